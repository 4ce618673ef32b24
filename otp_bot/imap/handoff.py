"""Handing fetched mail to the bot, and recording it, so each message counts once.

The watermark and the Message-IDs are written in one transaction after the
handler returned. Candidates (mail from linkedin.com) and messages the
pre-filter could not read are recorded one by one;
the other messages only make the bot log a line, so their records wait and go
along with the next candidate's or at the end of the batch: one durable write
per batch instead of one per newsletter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from structlog.typing import FilteringBoundLogger

from otp_bot.imap.reading import Fetched, IncomingMail
from otp_bot.store.db import Store, Watermark

MailHandler = Callable[[IncomingMail], Awaitable[None]]


@dataclass
class _Ledger:
    """Handed-off messages not yet written to the store."""

    uidvalidity: int
    last_uid: int | None = None
    message_ids: list[str] = field(default_factory=list)


class Handoff:
    def __init__(
        self,
        store: Store,
        account_id: str,
        folder: str,
        handler: MailHandler,
        log: FilteringBoundLogger,
    ) -> None:
        self._store = store
        self._account = account_id
        self._folder = folder
        self._handler = handler
        self._log = log

    async def deliver(
        self, batch: list[Fetched], through: Watermark, stop: asyncio.Event
    ) -> tuple[int, bool]:
        """Hand off ``batch`` in UID order: (messages handed, whole batch done).

        When the whole batch went through, the watermark moves to ``through``
        (which also covers messages expunged between SEARCH and FETCH); after
        a stop or a handler failure it stays just after the last message
        handled, and the rest is tried at the next round.
        """
        ledger = _Ledger(through.uidvalidity)
        handed = 0
        for fetched in batch:
            outcome = "stopped" if stop.is_set() else await self._one(fetched, ledger)
            if outcome in ("stopped", "failed"):
                self._commit(ledger)
                return handed, False
            handed += outcome == "handed"
        ledger.last_uid = through.last_uid
        self._commit(ledger)
        return handed, True

    async def _one(self, fetched: Fetched, ledger: _Ledger) -> str:
        mail, message_id = fetched.mail, fetched.message_id
        if message_id and (
            message_id in ledger.message_ids or self._store.message_seen(self._account, message_id)
        ):
            self._log.info("mailbox_duplicate_skipped", uid=mail.uid)
            ledger.last_uid = mail.uid
            return "skipped"
        self._log.info(
            "mailbox_message", uid=mail.uid, candidate=fetched.candidate, size=fetched.size
        )
        try:
            await self._handler(mail)
        except Exception:  # noqa: BLE001 - a handler bug must not stop the watcher
            self._log.exception("mailbox_handler_failed", uid=mail.uid)
            return "failed"
        ledger.last_uid = mail.uid
        if message_id:
            ledger.message_ids.append(message_id)
        if fetched.candidate or mail.unreadable is not None:
            self._commit(ledger)  # at once: a restart must never read it again
        return "handed"

    def _commit(self, ledger: _Ledger) -> None:
        if ledger.last_uid is None:
            return
        mark = Watermark(ledger.uidvalidity, ledger.last_uid)
        self._store.record_handled(self._account, self._folder, mark, ledger.message_ids)
        ledger.last_uid = None
        ledger.message_ids.clear()
