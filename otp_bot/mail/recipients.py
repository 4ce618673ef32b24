"""Whose e-mail is it: the To header LinkedIn writes, read and routed (pure).

Several accounts may share one mailbox (``OTP_BOT_MAIL_RECIPIENTS``). The
authoritative recipient is the message's single ``To`` header: in a mail the
bot trusts (DKIM or DMARC pass for linkedin.com) it was written, and signed,
by LinkedIn, and names the LinkedIn account the code belongs to.
``Delivered-To`` and ``X-Original-To`` are never used: they carry the SMTP
envelope, which whoever sends the message chooses (a genuine LinkedIn mail
meant for someone else can be re-sent to our alias and the server then
truthfully writes our alias there), and a sender can prepend copies of its
own. A second ``To`` header is what a re-sent genuine mail looks like when an
address was added above the signed one: such a mail counts for nobody.
docs/many-accounts.md explains the choice.

Bounded and linear: only the header block is parsed (``split_head`` caps it),
a ``To`` value longer than ``MAX_TO_CHARS`` or naming more than
``MAX_RECIPIENTS`` addresses counts for nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import getaddresses

from otp_bot.addresses import normalize_address
from otp_bot.mail.parts import split_head

# LinkedIn writes one address; a few names with display names fit easily.
MAX_TO_CHARS = 2048
MAX_RECIPIENTS = 20


@dataclass(frozen=True, slots=True)
class Recipients:
    """The addresses of a message's one To header (lower-cased), or why there are none."""

    addresses: frozenset[str]
    problem: str | None = None  # no_to, several_to_headers: N, to_too_long, too_many_recipients


def read_recipients(raw: bytes) -> Recipients:
    """The To addresses of ``raw`` (headers only are read; a body is never needed)."""
    headers, _body = split_head(raw)
    values = headers.get_all("To", [])
    if not values:
        return Recipients(frozenset(), "no_to")
    if len(values) > 1:
        return Recipients(frozenset(), f"several_to_headers: {len(values)}")
    return parse_to(str(values[0]))


def parse_to(value: str) -> Recipients:
    """The addresses one To header value names (display names and groups allowed)."""
    if len(value) > MAX_TO_CHARS:
        return Recipients(frozenset(), "to_too_long")
    if value.count("@") > MAX_RECIPIENTS:
        return Recipients(frozenset(), "too_many_recipients")
    found = {normalize_address(addr) for _name, addr in getaddresses([value]) if addr}
    addresses = frozenset(a for a in found if a is not None)
    return Recipients(addresses, None if addresses else "no_to")


def owner(found: Recipients, accounts: Mapping[str, frozenset[str]]) -> tuple[str | None, str]:
    """Which account a message counts for: ``(account_id, why)`` or ``(None, why not)``.

    ``accounts`` maps each account reading this mailbox to its recipients. One
    account without recipients takes every message (the layout of one mailbox
    per account); otherwise a message counts only for the one account whose
    recipients its To names.
    """
    if len(accounts) == 1:
        ((account_id, mine),) = accounts.items()
        if not mine:
            return account_id, "sole_account"
    if found.problem is not None:
        return None, found.problem
    matches = sorted(a for a, mine in accounts.items() if mine & found.addresses)
    if not matches:
        return None, "not_addressed_here"
    if len(matches) > 1:
        return None, "addressed_to_several_accounts"
    return matches[0], "addressed"
