"""Watching the mailbox: every new message handed to the bot once per (UIDVALIDITY, UID).

    run(): connect -> catch up -> [wait (IDLE / poll) -> catch up]* -> close
               ^                                            |
               +---- backoff with jitter <-- MailboxError --+
                     auth_failed (loud, slow retry) <-- MailboxAuthError

Blocking imap-tools calls run in one dedicated thread per watcher
(``mailbox_session.Session``); this module keeps the state machine, the
watermark and the handoff on the asyncio side. The watermark advances only
after the handler returned, in the same transaction that records the
Message-ID, so a crash at any point neither loses nor repeats a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import structlog

from otp_bot.config import MailAction, Settings
from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.mailbox_auth import TokenSource
from otp_bot.mailbox_handoff import Handoff, MailHandler
from otp_bot.mailbox_reading import IncomingMail, fetch_new, window_start
from otp_bot.mailbox_session import FolderState, Session
from otp_bot.store import Store, Watermark

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
# after_use() waits this long for the IMAP thread before leaving the action queued.
AFTER_USE_WAIT = 30.0

T = TypeVar("T")

__all__ = ["IncomingMail", "MailHandler", "MailboxReport", "MailboxWatcher", "check_mailbox"]


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
        self._tokens = (
            TokenSource(settings.imap_oauth2_token_command, settings.imap_oauth2_token_lifetime)
            if settings.imap_oauth2_token_command
            else None
        )
        self._log = log.bind(account_id=settings.account_id, folder=settings.imap_folder)
        self._handoff = Handoff(
            store, settings.account_id, settings.imap_folder, handler, self._log
        )
        self._pending: deque[tuple[IncomingMail, asyncio.Future[None]]] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self._session: Session | None = None
        self._wake_fds: tuple[int, int] | None = None
        self._stop = asyncio.Event()

    # --- life -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; returns within 2 s of it."""
        self._stop = stop
        self._wake_fds = os.pipe()
        for fd in self._wake_fds:
            os.set_blocking(fd, False)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="otp-bot-imap")
        guard = asyncio.create_task(self._stop_guard())
        try:
            await self._reconnect_loop()
        finally:
            guard.cancel()
            await self._shutdown()

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._connected_life()
            except MailboxAuthError as exc:
                await self._auth_failed(exc)
            except MailboxError as exc:
                attempt = 0 if time.monotonic() - started > STABLE_AFTER else attempt + 1
                delay = backoff_delay(attempt, self._settings.imap_backoff_max)
                self._set_state("backoff")
                self._log.warning("mailbox_disconnected", error=str(exc), backoff=round(delay, 2))
                await self._close_session()
                await self._sleep(delay)

    async def _auth_failed(self, exc: MailboxAuthError) -> None:
        self._set_state("auth_failed")
        retry = self._settings.imap_auth_retry_interval
        self._log.error("mailbox_auth_failed", error=str(exc), retry_in=retry)
        await self._close_session()
        await self._sleep(retry)

    async def _connected_life(self) -> None:
        self._set_state("connecting")
        folder = await self._call(self._open_session)
        self._log.info(
            "mailbox_connected",
            idle=folder.idle,
            uidvalidity=folder.uidvalidity,
            messages=folder.exists,
        )
        await self._start_position(folder.uidvalidity)
        count = await self._catch_up()
        self._log.info("mailbox_catchup", count=count)
        self._progress()
        self.watching.set()
        self._set_state("watching")
        settings = self._settings
        wait = settings.imap_idle_interval if folder.idle else settings.imap_poll_interval
        while not self._stop.is_set():
            await self._call(self._require_session().wait, wait)
            self._progress()
            if self._stop.is_set():
                break
            await self._apply_pending()
            await self._catch_up()
            self._progress()

    def _open_session(self) -> FolderState:
        wake = self._wake_fds[0] if self._wake_fds else None
        session = Session(self._settings, self._tokens, wake)
        self._session = session
        return session.open()

    # --- catching up ------------------------------------------------------------

    async def _start_position(self, uidvalidity: int) -> None:
        """First start, or a new UIDVALIDITY: begin a bounded window back."""
        mark = self._store.watermark(self._settings.account_id, self._settings.imap_folder)
        if mark is not None and mark.uidvalidity == uidvalidity:
            return
        if mark is not None:
            self._log.warning("mailbox_uidvalidity_changed", old=mark.uidvalidity, new=uidvalidity)
        session = self._require_session()
        start = await self._call(window_start, session, self._settings.imap_lookback)
        self._log.info("mailbox_window_start", uidvalidity=uidvalidity, after_uid=start)
        self._set_watermark(Watermark(uidvalidity, start))

    async def _catch_up(self) -> int:
        """Hand off everything above the watermark, in UID order."""
        mark = self._store.watermark(self._settings.account_id, self._settings.imap_folder)
        if mark is None:
            raise MailboxError("no watermark after start-up")
        session = self._require_session()
        uids = await self._call(session.search_above, mark.last_uid)
        total = 0
        for index in range(0, len(uids), CHUNK):
            chunk = uids[index : index + CHUNK]
            limit = self._settings.imap_max_message_bytes
            batch = await self._call(fetch_new, session, chunk, limit)
            through = Watermark(mark.uidvalidity, chunk[-1])
            handed, done = await self._handoff.deliver(batch, through, self._stop)
            total += handed
            if not done:
                break
        return total

    # --- used mail ----------------------------------------------------------------

    async def after_use(self, mail: IncomingMail) -> None:
        """Apply OTP_BOT_MAIL_AFTER_USE to this message; errors are logged, not raised."""
        if self._settings.mail_after_use is MailAction.LEAVE:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((mail, done))
        self._wake()
        try:
            await asyncio.wait_for(asyncio.shield(done), AFTER_USE_WAIT)
        except TimeoutError:
            self._log.warning("mailbox_after_use_deferred", uid=mail.uid)

    async def _apply_pending(self) -> None:
        action, target = self._settings.mail_after_use, self._settings.mail_move_folder
        session = self._require_session()
        while self._pending:
            mail, done = self._pending.popleft()
            try:
                if session.folder is None or session.folder.uidvalidity != mail.uidvalidity:
                    self._log.warning("mailbox_after_use_skipped", uid=mail.uid)
                else:
                    await self._call(session.apply, mail.uid, action, target)
                    self._log.info("mailbox_after_use", uid=mail.uid, action=str(action))
            except MailboxError as exc:
                self._log.warning("mailbox_after_use_failed", uid=mail.uid, error=str(exc))
            finally:
                if not done.done():
                    done.set_result(None)

    # --- plumbing -------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    def _require_session(self) -> Session:
        if self._session is None:
            raise MailboxError("not connected")
        return self._session

    def _set_watermark(self, mark: Watermark) -> None:
        self._store.set_watermark(self._settings.account_id, self._settings.imap_folder, mark)

    def _set_state(self, state: str) -> None:
        if state != "watching":
            self.watching.clear()
        self.state = state

    def _progress(self) -> None:
        self.last_progress = time.monotonic()

    def _wake(self) -> None:
        if self._wake_fds is not None:
            # A full pipe means a wake-up is already pending.
            with contextlib.suppress(OSError):
                os.write(self._wake_fds[1], b"!")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _stop_guard(self) -> None:
        await self._stop.wait()
        self._wake()
        await asyncio.sleep(STOP_ABORT_AFTER)
        if self._session is not None:
            self._session.abort()

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await self._call(session.close)

    async def _shutdown(self) -> None:
        self._set_state("stopped")
        self._wake()  # a thread still waiting in IDLE returns at once
        session, self._session = self._session, None
        if session is not None:
            try:
                await asyncio.wait_for(self._call(session.close), STOP_ABORT_AFTER)
            except TimeoutError:
                session.abort()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        for fd in self._wake_fds or ():
            os.close(fd)
        self._wake_fds = None
        for _mail, done in self._pending:
            if not done.done():
                done.set_result(None)
        self._log.info("mailbox_stopped")


async def check_mailbox(settings: Settings) -> MailboxReport:
    """Log in and select the folder once (``otp-bot check``); raises MailboxError."""
    tokens = (
        TokenSource(settings.imap_oauth2_token_command, settings.imap_oauth2_token_lifetime)
        if settings.imap_oauth2_token_command
        else None
    )

    def probe() -> MailboxReport:
        session = Session(settings, tokens, None)
        try:
            folder = session.open()
            return MailboxReport(folder.idle, folder.uidvalidity, folder.exists)
        finally:
            session.close()

    return await asyncio.to_thread(probe)
