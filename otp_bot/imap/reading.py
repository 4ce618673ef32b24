"""What the watcher's thread reads: headers first, whole messages only for candidates.

A candidate is mail whose From header is at linkedin.com (or a subdomain);
only candidates are downloaded whole, up to ``imap_max_message_bytes``. Every
other message reaches the bot as its header block, so the bot can log one line
for it and move the watermark on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser

from otp_bot.imap.session import Session
from otp_bot.mail.mime import MAX_HEADER_CHARS
from otp_bot.mail.parts import MAX_HEADER_BLOCK_BYTES
from otp_bot.mail.trust import sender_domain_trusted

# The first start (or a new UIDVALIDITY) looks at no more than this many of
# the newest messages, however large the folder: start-up cost stays flat.
WINDOW_MAX_MESSAGES = 200
# Message-IDs longer than this are not real ones (RFC 5322 lines stop at 998).
MAX_MESSAGE_ID = 998


@dataclass(frozen=True, slots=True)
class IncomingMail:
    """One message as the bot receives it."""

    uidvalidity: int
    uid: int
    raw: bytes  # whole message (<= imap_max_message_bytes), or headers only
    complete: bool  # False: headers only (not from linkedin.com) or truncated
    internal_date: datetime | None  # tz-aware UTC INTERNALDATE
    size: int | None = None  # RFC822.SIZE as the server reported it
    unreadable: str | None = None  # why the pre-filter could not read it (an error class)


@dataclass(frozen=True, slots=True)
class Fetched:
    mail: IncomingMail
    candidate: bool
    size: int  # RFC822.SIZE as the server reported it
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Header:
    """What the pre-filter read from a header block."""

    candidate: bool
    message_id: str | None
    unreadable: str | None = None  # the error class when it could not be read


def header_fields(header: bytes) -> tuple[str, str | None]:
    """(From, Message-ID) of a header block; unreadable values count as absent.

    Read within the mail reader's own bounds (the first MAX_HEADER_BLOCK_BYTES,
    MAX_HEADER_CHARS of From), so the pre-filter never works harder than
    ``extract`` and never judges a From header ``extract`` would read otherwise.
    """
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(header[:MAX_HEADER_BLOCK_BYTES])
    sender = str(parsed.get("From", "") or "")[:MAX_HEADER_CHARS]
    message_id = str(parsed.get("Message-ID", "") or "").strip()
    if not message_id or len(message_id) > MAX_MESSAGE_ID:
        return sender, None
    return sender, message_id


def is_candidate(sender: str) -> bool:
    try:
        return sender_domain_trusted(sender)
    except (ValueError, TypeError, IndexError):  # a hostile From header is simply not a candidate
        return False


def read_header(header: bytes) -> Header:
    """The pre-filter for one message; whatever goes wrong makes it unreadable, never raises.

    ``Exception`` includes RecursionError (deeply nested comments in From) and
    MemoryError; cancellation, KeyboardInterrupt and SystemExit go through.
    """
    try:
        sender, message_id = header_fields(header)
        return Header(is_candidate(sender), message_id)
    except Exception as exc:  # noqa: BLE001 - one message must not stop the watcher
        return Header(False, None, type(exc).__name__)


def fetch_new(session: Session, uids: list[int], limit: int) -> list[Fetched]:
    """Headers of ``uids``, plus the whole message for candidates, in UID order."""
    fetched: list[Fetched] = []
    for item in session.headers(uids):
        header = read_header(item.literal)
        candidate, message_id = header.candidate, header.message_id
        raw, complete = item.literal, False
        if candidate:
            body = session.body(item.uid, item.size, limit)
            if body is None:  # expunged meanwhile
                continue
            raw, complete = body
        mail = IncomingMail(
            uidvalidity=session.state.uidvalidity,
            uid=item.uid,
            raw=raw,
            complete=complete,
            internal_date=item.internal_date,
            size=item.size,
            unreadable=header.unreadable,
        )
        fetched.append(Fetched(mail, candidate, item.size, message_id))
    return sorted(fetched, key=lambda f: f.mail.uid)


def look(
    session: Session, last_uid: int, chunk: int, limit: int
) -> tuple[list[int], list[Fetched]]:
    """UIDs above ``last_uid``, and the first ``chunk`` of them fetched (``fetch_new``).

    One job on the IMAP pool instead of two: on an event loop busy with
    hundreds of mailboxes, each trip to a pool thread and back costs turns of it.
    """
    uids = session.search_above(last_uid)
    return uids, fetch_new(session, uids[:chunk], limit) if uids else []


def window_start(session: Session, lookback: float) -> int:
    """The UID to start after: just before the newest messages younger than ``lookback``."""
    since = datetime.now(UTC) - timedelta(seconds=lookback)
    newest = session.newest(WINDOW_MAX_MESSAGES)
    recent = [uid for uid, date in newest if date is None or date >= since]
    if recent:
        return min(recent) - 1
    top = max((uid for uid, _date in newest), default=0)
    return max(top, session.state.uidnext - 1, 0)
