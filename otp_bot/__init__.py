"""otp-bot: solves LinkedIn publish checkpoints for postpress drafts from the account's mailbox."""

__version__ = "0.1.0"
