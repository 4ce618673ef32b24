"""Small pieces of IMAP wire handling for the mailbox session.

imaplib hands back FETCH answers as a list mixing ``(prefix, literal)`` tuples
and plain lines; ``parse`` turns them into ``Item`` values. The rest are
helpers around imaplib's buffering.
"""

from __future__ import annotations

import imaplib
import io
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, cast

from imap_tools.errors import ImapToolsError
from imap_tools.utils import encode_folder

from otp_bot.errors import MailboxError
from otp_bot.imap.explain import hint, plain, server_text

# Everything imaplib and imap-tools raise when a connection or command fails.
LIBRARY_ERRORS = (imaplib.IMAP4.error, OSError, EOFError, ImapToolsError)

# imaplib reads through an 8 kB buffer per connection (8 MB at 1,000 mailboxes).
# IMAP lines are short and literals longer than the buffer are read past it, so
# 1 kB costs a few more reads of a long answer and nothing else.
READ_BUFFER = 1024
# imaplib keeps a connection's last 10 lines in a debugging ring (``print_log``):
# about 1.7 kB a mailbox that nothing reads. One is kept.
COMMAND_LOG = 1

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Library errors become ``MailboxError`` naming the step that failed."""
    try:
        yield
    except MailboxError:
        raise
    except LIBRARY_ERRORS as exc:
        raise MailboxError(f"{what}: {plain(exc)}", hint=hint(exc)) from exc


@dataclass(frozen=True, slots=True)
class Item:
    """One message of a FETCH answer."""

    uid: int
    size: int
    internal_date: datetime | None
    literal: bytes  # the requested BODY section, b"" when none was asked for


def parse(data: Sequence[object]) -> list[Item]:
    items: list[Item] = []
    index = 0
    while index < len(data):
        entry = data[index]
        index += 1
        if isinstance(entry, tuple):
            meta, literal = bytes(entry[0]), bytes(entry[1])
            # imaplib puts the rest of the line after a literal in the next entry.
            if index < len(data) and isinstance(data[index], bytes):
                rest = data[index]
                meta += b" " + (rest if isinstance(rest, bytes) else b"")
                index += 1
        elif isinstance(entry, bytes):
            meta, literal = entry, b""
        else:
            continue
        uid = _UID.search(meta)
        if uid is None:  # an unsolicited FLAGS update, say
            continue
        size = _SIZE.search(meta)
        date = _DATE.search(meta)
        items.append(
            Item(
                uid=int(uid[1]),
                size=int(size[1]) if size else len(literal),
                internal_date=internal_date(date[1].decode()) if date else None,
                literal=literal,
            )
        )
    return items


def internal_date(text: str) -> datetime | None:
    """``"28-Nov-2026 12:00:00 +0000"`` -> an aware UTC datetime (None if unreadable)."""
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None


def ints(data: Sequence[object]) -> list[int]:
    """Numbers of a SEARCH answer."""
    first = data[0] if data else None
    if not isinstance(first, bytes):
        return []
    return [int(word) for word in first.split() if word.isdigit()]


def first_int(values: Sequence[object] | None) -> int | None:
    for value in values or []:
        if isinstance(value, bytes) and value.strip().isdigit():
            return int(value)
    return None


def uid_set(uids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"`` (keeps commands short on long runs)."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], -1]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    return ",".join(ranges)


def quote(folder: str) -> str:
    """A folder name as IMAP wants it (modified UTF-7, quoted)."""
    return str(encode_folder(folder).decode("ascii"))


def check(result: tuple[str, Sequence[object]]) -> None:
    if result[0] != "OK":
        raise MailboxError(f"server answered {result[0]}: {server_text(result[1])}")


def buffered_input(client: imaplib.IMAP4) -> bool:
    """True when imaplib (or TLS) already holds unread bytes from the server.

    IDLE can swallow a notification: mail that arrived just before IDLE is
    announced in the same read as the continuation line, and the socket then
    does not become readable until the server's next words.
    """
    sock = client.sock
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    if getattr(client, "_readbuf", None):  # Python 3.14's imaplib buffers here
        return True
    reader = getattr(client, "file", None)
    if not isinstance(reader, io.BufferedReader):
        return False
    previous = sock.gettimeout()
    sock.settimeout(0)
    try:
        return bool(reader.peek(1))
    except OSError:  # nothing there (would block), or a dead socket found later
        return False
    finally:
        sock.settimeout(previous)


def slim(client: imaplib.IMAP4) -> None:
    """Shrink imaplib's per-connection memory, between two commands (nothing unread)."""
    if not buffered_input(client):
        reader = cast("IO[bytes]", client.sock.makefile("rb", buffering=READ_BUFFER))
        old, client.file = client.file, reader
        old.close()  # the socket stays open (makefile counts its readers)
    state = vars(client)
    ring = state.get("_cmd_log")
    if isinstance(ring, dict):  # only when Python runs without -O
        ring.clear()
        state.update(_cmd_log_len=COMMAND_LOG, _cmd_log_idx=0)
