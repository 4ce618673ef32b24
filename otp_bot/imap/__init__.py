"""IMAP: the only package that imports imap_tools/imaplib."""
