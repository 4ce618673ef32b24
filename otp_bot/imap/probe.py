"""``otp-bot check``'s look at the mailbox: what the server offers, with no side effect.

It logs in, reads the post-login capabilities and the namespace, selects the
folder (as the daemon does; no message changes), looks the move folder up
with LIST and reads the newest message's arrival and the server's clock
(FETCH INTERNALDATE, SEARCH YOUNGER). It creates nothing, flags nothing and
moves nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from otp_bot.config import MailAction, Settings
from otp_bot.imap import actions
from otp_bot.imap.auth import tokens_for
from otp_bot.imap.reading import read_header
from otp_bot.imap.server import Namespace, folder_name
from otp_bot.imap.session import Session
from otp_bot.imap.wire import translated


@dataclass(frozen=True, slots=True)
class MailboxReport:
    idle_supported: bool
    uidvalidity: int
    messages: int
    move: bool
    uidplus: bool
    namespace: Namespace
    after_use: MailAction  # what the configured action really does on this server
    move_folder: str | None  # the server's name of the move target (action move only)
    move_folder_exists: bool | None
    # INTERNALDATE of the newest message (None: empty folder) ...
    newest_arrival: datetime | None = None
    # ... and the server's clock minus ours, by SEARCH YOUNGER (None: not measured).
    clock_offset: float | None = None


async def check_mailbox(settings: Settings) -> MailboxReport:
    """Log in and look (``otp-bot check``); raises MailboxError."""
    tokens = tokens_for(settings)

    def probe() -> MailboxReport:
        session = Session(settings, tokens)
        try:
            folder = session.open()
            server = folder.server
            wanted = settings.mail_after_use
            target = exists = None
            if wanted is MailAction.MOVE:
                target = folder_name(settings.mail_move_folder, server.namespace)
                with translated("list"):
                    exists = actions.folder_exists(session.client, target)
            arrival, offset = _clock(session)
            return MailboxReport(
                idle_supported=server.idle,
                uidvalidity=folder.uidvalidity,
                messages=folder.exists,
                move=server.move,
                uidplus=server.uidplus,
                namespace=server.namespace,
                after_use=actions.effective(wanted, server),
                move_folder=target,
                move_folder_exists=exists,
                newest_arrival=arrival,
                clock_offset=offset,
            )
        finally:
            session.close()

    return await asyncio.to_thread(probe)


# How far back ``otp-bot check`` looks for LinkedIn's newest mail.
LAST_MAIL_WINDOW = 200


async def last_linkedin_mail(settings: Settings) -> bytes | None:
    """The newest message of the last ``LAST_MAIL_WINDOW`` whose From is at linkedin.com.

    Read with BODY.PEEK (nothing is flagged), within OTP_BOT_IMAP_MAX_MESSAGE_BYTES;
    ``otp-bot check`` reads it to report how the DKIM mode judges it.
    """
    tokens = tokens_for(settings)

    def look() -> bytes | None:
        session = Session(settings, tokens)
        try:
            session.open()
            uids = [uid for uid, _ in session.newest(LAST_MAIL_WINDOW)]
            if not uids:
                return None
            items = session.headers(uids)
            candidates = [i for i in items if read_header(i.literal).candidate]
            if not candidates:
                return None
            newest = max(candidates, key=lambda item: item.uid)
            body = session.body(newest.uid, newest.size, settings.imap_max_message_bytes)
            return body[0] if body is not None else None
        finally:
            session.close()

    return await asyncio.to_thread(look)


def _clock(session: Session) -> tuple[datetime | None, float | None]:
    """The newest message's arrival and the server's clock against ours (``imap/clock.py``)."""
    newest = [(uid, date) for uid, date in session.newest(1) if date is not None]
    if not newest:
        return None, None
    uid, arrival = newest[-1]
    return arrival, session.clock_offset(uid, arrival)
