"""Bounded e-mail reading: raw RFC 822 bytes in, the few things extract needs out.

Only the first ``MAX_MESSAGE_BYTES`` and ``MAX_LINES`` are read; the MIME
walk below them is bounded in ``otp_bot.mail.parts``. Headers are decoded here:
RFC 2047 subjects, Message-ID, and the received time (topmost ``Received``
header's date, else ``Date``), always as tz-aware UTC.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.utils import parsedate_to_datetime

from otp_bot.mail.parts import collect_bodies, decode_bytes, split_head

# LinkedIn's mails are 20-120 KB; a megabyte leaves plenty of room and bounds
# the work when the rest is one huge attachment.
MAX_MESSAGE_BYTES = 1 << 20
# Parsing costs up to 2 µs per line: a flood of 200,000 lines
# would take 200 ms. LinkedIn's mails have about 2,000 lines.
MAX_LINES = 20_000
MAX_HEADER_CHARS = 2048
# Header values as the trust checks see them: long enough that a value over
# their own caps (Authentication-Results 4 KiB, From 998) shows as too long.
MAX_TRACE_HEADER_CHARS = 8192
_FIRST_LINES_RE = re.compile(rb"(?:[^\n]*\n){%d}" % MAX_LINES)
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# C0 controls and DEL say nothing in a subject; tabs and newlines fold to spaces.
_CONTROLS = dict.fromkeys([*range(9), *range(11, 32), 127], " ")


@dataclass(frozen=True, slots=True)
class Mail:
    """What one e-mail says, decoded but not yet judged."""

    from_headers: tuple[str, ...]
    subject: str
    message_id: str | None
    received_at: datetime | None
    auth_results: tuple[str, ...]  # Authentication-Results values, topmost first
    plain: tuple[str, ...]  # text/plain bodies in MIME order
    html: tuple[str, ...]  # text/html bodies in MIME order
    attached_message: bool  # carries a message/rfc822 part (a forward as attachment)
    headers: tuple[tuple[str, str], ...] = ()  # (name, value) top to bottom, values capped


def read_mail(raw: bytes) -> Mail:
    """Parse ``raw`` within the bounds above; broken structure yields what is readable."""
    msg, body = split_head(_bounded(raw))
    bodies = collect_bodies(msg, body)
    return Mail(
        from_headers=tuple(_header_text(v) for v in msg.get_all("From", [])),
        subject=decode_words(_header_text(msg.get("Subject", ""))),
        message_id=_message_id(_header_text(msg.get("Message-ID", ""))),
        received_at=_received_at(msg),
        auth_results=tuple(_header_text(v) for v in msg.get_all("Authentication-Results", [])),
        plain=tuple(bodies.plain),
        html=tuple(bodies.html),
        attached_message=bodies.attached_message,
        headers=tuple((name, str(value)[:MAX_TRACE_HEADER_CHARS]) for name, value in msg.items()),
    )


def _bounded(raw: bytes) -> bytes:
    """Cut ``raw`` at MAX_MESSAGE_BYTES and MAX_LINES lines."""
    raw = raw[:MAX_MESSAGE_BYTES]
    if raw.count(b"\n") > MAX_LINES and (lines := _FIRST_LINES_RE.match(raw)) is not None:
        return raw[: lines.end()]
    return raw


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words; unknown charsets and bad bytes become U+FFFD,
    and one broken word is dropped without losing the rest of the header."""
    text = _decode_header(value)
    if text is None:
        text = _ENCODED_WORD_RE.sub(lambda word: _decode_header(word.group()) or "", value)
    return " ".join(text.translate(_CONTROLS).split())


def _decode_header(value: str) -> str | None:
    try:
        chunks = decode_header(value)
    except (HeaderParseError, ValueError, LookupError, AssertionError, binascii.Error):
        return None
    return "".join(
        chunk if isinstance(chunk, str) else decode_bytes(chunk, charset)
        for chunk, charset in chunks
    )


def _header_text(value: object) -> str:
    return str(value)[:MAX_HEADER_CHARS]


def _message_id(value: str) -> str | None:
    value = value.strip().removeprefix("<").removesuffix(">").strip()
    return value or None


def _received_at(msg: Message) -> datetime | None:
    received = msg.get_all("Received", [])
    if received:
        when = _parse_date(_header_text(received[0]).rpartition(";")[2])
        if when is not None:
            return when
    return _parse_date(_header_text(msg.get("Date", "")))


def _parse_date(value: str) -> datetime | None:
    value = " ".join(value.split())
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": the time is UTC, the zone unknown (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
