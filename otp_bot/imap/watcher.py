"""Watching the mailbox: every new message handed to the bot once per (UIDVALIDITY, UID).

    run(): connect -> catch up -> [wait (IDLE / poll) -> catch up]* -> close
               ^                                            |
               +---- backoff with jitter <-- MailboxError --+
                     auth_failed (loud, slow retry) <-- MailboxAuthError

Blocking imap-tools calls run in one dedicated thread per watcher
(``otp_bot.imap.session.Session``); this module keeps the state machine, the
watermark and the handoff on the asyncio side. The watermark advances only
after the handler returned, in the same transaction that records the
Message-ID, so a crash at any point neither loses nor repeats a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass

import structlog

from otp_bot.config import MailAction, Settings
from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.imap.auth import TokenSource
from otp_bot.imap.handoff import Handoff, MailHandler
from otp_bot.imap.reading import IncomingMail, fetch_new, window_start
from otp_bot.imap.session import Session
from otp_bot.imap.thread import ImapThread
from otp_bot.store.db import Store, Watermark

log = structlog.get_logger(__name__)

# First reconnect delay; doubles per failed attempt up to imap_backoff_max.
BACKOFF_BASE = 0.5
# A connection that lived this long resets the backoff to its base.
STABLE_AFTER = 60.0
# After stop is set, a thread still blocked in a socket call gets its socket
# shut down after this long (run() must return within 2 s).
STOP_ABORT_AFTER = 1.0
# Messages fetched and handed off per round; bounds memory during a catch-up.
CHUNK = 100
# After the handler failed, the message is tried again this soon at the latest
# (instead of at the next mail or IDLE renewal).
HANDLER_RETRY = 30.0
# Message-IDs are kept this long (at least twice the look-back window) for the
# dedup of a UIDVALIDITY rescan, which never looks further back than that.
SEEN_RETENTION = 30 * 86400.0

__all__ = ["IncomingMail", "MailboxReport", "MailboxWatcher", "check_mailbox"]


@dataclass(frozen=True, slots=True)
class MailboxReport:
    idle_supported: bool
    uidvalidity: int
    messages: int


def backoff_delay(attempt: int, ceiling: float) -> float:
    """Exponential with "equal jitter": half fixed, half random."""
    delay: float = min(ceiling, BACKOFF_BASE * 2.0 ** min(attempt, 32))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not crypto


class MailboxWatcher:
    def __init__(self, settings: Settings, store: Store, handler: MailHandler) -> None:
        self.watching = asyncio.Event()
        self.last_progress = time.monotonic()
        self.state = "stopped"
        self._settings = settings
        self._store = store
        self._log = log.bind(account_id=settings.account_id, folder=settings.imap_folder)
        self._handoff = Handoff(
            store, settings.account_id, settings.imap_folder, handler, self._log
        )
        self._imap = ImapThread(settings, _tokens(settings))
        self._deferred: list[IncomingMail] = []  # after_use() while disconnected
        self._behind = False  # the handler failed: retry soon
        self._stop = asyncio.Event()

    # --- life -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; returns within 2 s of it."""
        self._stop = stop
        self._imap.start()
        guard = asyncio.create_task(self._stop_guard())
        try:
            await self._reconnect_loop()
        finally:
            guard.cancel()
            self._set_state("stopped")
            await self._imap.stop(STOP_ABORT_AFTER)
            self._log.info("mailbox_stopped")

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._connected_life()
            except MailboxAuthError as exc:
                self._set_state("auth_failed")
                retry = self._settings.imap_auth_retry_interval
                self._log.error("mailbox_auth_failed", error=str(exc), retry_in=retry)
                await self._imap.close_session()
                await self._sleep(retry)
            except MailboxError as exc:
                attempt = 0 if time.monotonic() - started > STABLE_AFTER else attempt + 1
                delay = backoff_delay(attempt, self._settings.imap_backoff_max)
                self._set_state("backoff")
                self._log.warning("mailbox_disconnected", error=str(exc), backoff=round(delay, 2))
                await self._imap.close_session()
                await self._sleep(delay)

    def _forget_old_message_ids(self) -> None:
        keep = max(SEEN_RETENTION, 2 * self._settings.imap_lookback)
        self._store.forget_seen_messages(self._settings.account_id, time.time() - keep)

    async def _connected_life(self) -> None:
        self._set_state("connecting")
        folder = await self._imap.open()
        self._log.info(
            "mailbox_connected",
            idle=folder.idle,
            uidvalidity=folder.uidvalidity,
            messages=folder.exists,
        )
        await self._start_position(folder.uidvalidity)
        count = await self._catch_up()
        self._log.info("mailbox_catchup", count=count)
        self._forget_old_message_ids()
        self._progress()
        self.watching.set()
        self._set_state("watching")
        settings = self._settings
        wait = settings.imap_idle_interval if folder.idle else settings.imap_poll_interval
        while not self._stop.is_set():
            await self._apply_deferred()
            timeout = min(wait, HANDLER_RETRY) if self._behind else wait
            await self._imap.call(self._imap.require().wait, timeout)
            self._progress()
            if not self._stop.is_set():
                await self._catch_up()
                self._progress()

    # --- catching up ------------------------------------------------------------

    async def _start_position(self, uidvalidity: int) -> None:
        """First start, or a new UIDVALIDITY: begin a bounded window back."""
        account, folder = self._settings.account_id, self._settings.imap_folder
        mark = self._store.watermark(account, folder)
        if mark is not None and mark.uidvalidity == uidvalidity:
            return
        if mark is not None:
            self._log.warning("mailbox_uidvalidity_changed", old=mark.uidvalidity, new=uidvalidity)
        session = self._imap.require()
        start = await self._imap.call(window_start, session, self._settings.imap_lookback)
        self._log.info("mailbox_window_start", uidvalidity=uidvalidity, after_uid=start)
        self._store.set_watermark(account, folder, Watermark(uidvalidity, start))

    async def _catch_up(self) -> int:
        """Hand off everything above the watermark, in UID order."""
        mark = self._store.watermark(self._settings.account_id, self._settings.imap_folder)
        if mark is None:
            raise MailboxError("no watermark after start-up")
        session = self._imap.require()
        uids = await self._imap.call(session.search_above, mark.last_uid)
        total = 0
        for index in range(0, len(uids), CHUNK):
            chunk = uids[index : index + CHUNK]
            limit = self._settings.imap_max_message_bytes
            batch = await self._imap.call(fetch_new, session, chunk, limit)
            through = Watermark(mark.uidvalidity, chunk[-1])
            handed, done = await self._handoff.deliver(batch, through, self._stop)
            total += handed
            if not done:
                self._behind = not self._stop.is_set()
                return total
        self._behind = False
        return total

    # --- used mail ----------------------------------------------------------------

    async def after_use(self, mail: IncomingMail) -> None:
        """Apply OTP_BOT_MAIL_AFTER_USE to this message; errors are logged, not raised.

        Runs on the IMAP thread between two of the watcher's own calls (an IDLE
        in progress is woken for it); while disconnected, it waits for the
        next connection.
        """
        action, target = self._settings.mail_after_use, self._settings.mail_move_folder
        if action is MailAction.LEAVE:
            return
        session = self._imap.session
        if session is None or session.folder is None:
            self._deferred.append(mail)
            self._log.info("mailbox_after_use_deferred", uid=mail.uid)
            return
        self._imap.wake()
        try:
            done = await self._imap.call(session.apply, mail.uidvalidity, mail.uid, action, target)
        except MailboxError as exc:
            self._log.warning("mailbox_after_use_failed", uid=mail.uid, error=str(exc))
            return
        event = "mailbox_after_use" if done else "mailbox_after_use_skipped"
        self._log.info(event, uid=mail.uid, action=str(action))

    async def _apply_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for mail in deferred:
            await self.after_use(mail)

    # --- small parts ------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != "watching":
            self.watching.clear()
        self.state = state

    def _progress(self) -> None:
        self.last_progress = time.monotonic()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _stop_guard(self) -> None:
        await self._stop.wait()
        self._imap.wake()
        await asyncio.sleep(STOP_ABORT_AFTER)
        self._imap.abort()


def _tokens(settings: Settings) -> TokenSource | None:
    command = settings.imap_oauth2_token_command
    return TokenSource(command, settings.imap_oauth2_token_lifetime) if command else None


async def check_mailbox(settings: Settings) -> MailboxReport:
    """Log in and select the folder once (``otp-bot check``); raises MailboxError."""
    tokens = _tokens(settings)

    def probe() -> MailboxReport:
        session = Session(settings, tokens, None)
        try:
            folder = session.open()
            return MailboxReport(folder.idle, folder.uidvalidity, folder.exists)
        finally:
            session.close()

    return await asyncio.to_thread(probe)
