"""IMAP: watch a mailbox, hand each new message over once. The only imap_tools/imaplib user.

May import: store (the watermark), mail (the sender pre-check), config, errors, logs.
Library errors become ``MailboxError`` / ``MailboxAuthError`` at this boundary.
"""
