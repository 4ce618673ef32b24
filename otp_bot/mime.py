"""Bounded MIME reading: raw RFC 822 bytes in, the few things extract needs out.

Every step is bounded so hostile mail costs little: only the first
``MAX_MESSAGE_BYTES`` are parsed, at most ``MAX_PARTS`` parts are visited, no
deeper than ``MAX_DEPTH``, and each text part is cut to ``MAX_PART_BYTES``
after transfer decoding. The stdlib parser with the ``compat32`` policy is
used: it is lenient with broken mail and about twice as fast as ``default``
on LinkedIn-sized messages (bench/extract.py).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import Compat32
from email.utils import parsedate_to_datetime
from typing import Any

# LinkedIn's mails are 20-120 KB; a megabyte leaves room and keeps parsing
# under ~10 ms even when the rest is one huge attachment.
MAX_MESSAGE_BYTES = 1 << 20
# LinkedIn nests three levels at most (mixed > alternative > text).
MAX_DEPTH = 8
MAX_PARTS = 64
# Enough for any LinkedIn HTML body; the rest of a giant part is never read.
MAX_PART_BYTES = 256 * 1024
MAX_HEADER_CHARS = 2048

_FLOWED_SIGNATURE = "-- "


class _Utf8Headers(Compat32):
    """compat32, but raw 8-bit header bytes are read as UTF-8 (what senders mean today)
    instead of becoming U+FFFD, so a homoglyph domain shows as itself."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        raw = value.encode("ascii", "surrogateescape")
        return raw.decode("utf-8", "replace")


_POLICY = _Utf8Headers()
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


def read_mail(raw: bytes) -> Mail:
    """Parse ``raw`` within the bounds above; broken structure degrades to headers only."""
    raw = raw[:MAX_MESSAGE_BYTES]
    try:
        msg = BytesParser(policy=_POLICY).parsebytes(raw)
    except RecursionError:
        msg = BytesHeaderParser(policy=_POLICY).parsebytes(raw)
    plain: list[str] = []
    html: list[str] = []
    attached = _collect_bodies(msg, plain, html)
    return Mail(
        from_headers=tuple(_header_text(v) for v in msg.get_all("From", [])),
        subject=decode_words(_header_text(msg.get("Subject", ""))),
        message_id=_message_id(_header_text(msg.get("Message-ID", ""))),
        received_at=_received_at(msg),
        auth_results=tuple(_header_text(v) for v in msg.get_all("Authentication-Results", [])),
        plain=tuple(plain),
        html=tuple(html),
        attached_message=attached,
    )


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words; unknown charsets and bad bytes become U+FFFD."""
    try:
        chunks = decode_header(value)
    except (ValueError, LookupError, AssertionError, binascii.Error):
        return " ".join(value.split())
    text = "".join(
        chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
        for chunk, charset in chunks
    )
    return " ".join(text.translate(_CONTROLS).split())


def _header_text(value: Any) -> str:
    # compat32 hands back email.header.Header objects for headers with raw 8-bit bytes.
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_HEADER_CHARS]


def _decode_bytes(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


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


def _collect_bodies(msg: Message, plain: list[str], html: list[str]) -> bool:
    """Walk the MIME tree breadth-first within the bounds; True if a message is attached."""
    attached = False
    queue: list[tuple[Message, int]] = [(msg, 0)]
    visited = 0
    while queue and visited < MAX_PARTS:
        part, depth = queue.pop(0)
        visited += 1
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            attached = True
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            if depth < MAX_DEPTH:
                queue.extend((sub, depth + 1) for sub in payload if isinstance(sub, Message))
            continue
        if ctype in ("text/plain", "text/html") and not _is_attachment(part):
            target = plain if ctype == "text/plain" else html
            target.append(_part_text(part, flowed=ctype == "text/plain"))
    return attached


def _is_attachment(part: Message) -> bool:
    disposition = _header_text(part.get("Content-Disposition", ""))
    return disposition.strip().lower().startswith("attachment")


def _part_text(part: Message, *, flowed: bool) -> str:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, binascii.Error):
        data = None
    if not isinstance(data, bytes):
        return ""
    text = _decode_bytes(data[:MAX_PART_BYTES], _charset(part))
    if flowed and str(part.get_param("format", "")).lower() == "flowed":
        delsp = str(part.get_param("delsp", "")).lower() == "yes"
        text = unflow(text, delsp=delsp)
    return text


def _charset(part: Message) -> str | None:
    charset = part.get_content_charset()
    if charset is None or not re.fullmatch(r"[a-z0-9_.:-]{1,40}", charset):
        return None
    return charset


def unflow(text: str, *, delsp: bool) -> str:
    """Rejoin RFC 3676 format=flowed lines (soft breaks end in a space)."""
    out: list[str] = []
    pending = ""
    for stuffed in text.splitlines():
        line = stuffed.removeprefix(" ")  # space-stuffing
        if line.endswith(" ") and line != _FLOWED_SIGNATURE:
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)
