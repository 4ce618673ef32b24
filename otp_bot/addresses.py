"""E-mail addresses as otp-bot compares them (pure, standard library only).

Used by ``config`` (validating ``OTP_BOT_MAIL_RECIPIENTS``) and by
``mail.recipients`` (reading a To header), which sit on different layers.
"""

from __future__ import annotations

# RFC 5321: an address is at most 254 octets.
MAX_ADDRESS_CHARS = 254


def normalize_address(value: str) -> str | None:
    """``Local@Domain`` -> ``local@domain``; None unless it is one plain addr-spec."""
    address = value.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(address) > MAX_ADDRESS_CHARS:
        return None
    if any(c.isspace() or c in '<>,;"' for c in address):
        return None
    return address
