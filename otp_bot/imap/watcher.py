"""Watching the mailbox: every new message handed to the bot once per (UIDVALIDITY, UID).

    run(): connect -> catch up -> [wait (IDLE / poll) -> catch up]* -> close
               ^                                            |
               +---- backoff with jitter <-- MailboxError --+
                     auth_failed (loud, slow retry) <-- MailboxAuthError

A wait lasts OTP_BOT_IMAP_IDLE_INTERVAL (or the poll interval), but only
OTP_BOT_IMAP_PROBE_INTERVAL while a draft of the account waits for a code
(``WatcherLinks.awaiting_code``): some servers accept IDLE and announce new
mail a minute late, so the folder is probed (NOOP + UID SEARCH) every few
seconds then. The lag from a message's arrival to the bot seeing it is
measured for mail found while watching. The backoff resets once a connection
got through its catch-up. Used mail is handled by ``used.UsedMail``, lag by
``lag.LagMeter``; what stays here (the state machine, catch-up and the
waiting policy, about 320 lines) reads best in one place.

Blocking imap-tools calls (``otp_bot.imap.session.Session``) run on the
process's shared IMAP pool, in order per mailbox, and IDLE waits on the event
loop (``otp_bot.imap.lane.ImapLane``); this module keeps the state machine, the
watermark and the handoff on the asyncio side. The watermark advances only
after the handler returned, in the same transaction that records the
Message-ID, so a crash at any point neither loses nor repeats a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Coroutine
from enum import StrEnum
from functools import partial
from typing import Any

import structlog

from otp_bot.config import MailAction, Settings
from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.imap.auth import tokens_for
from otp_bot.imap.handoff import Handoff, MailHandler
from otp_bot.imap.lag import LagMeter, WatcherLinks, seen_by
from otp_bot.imap.lane import ImapLane
from otp_bot.imap.pool import shared_pool
from otp_bot.imap.probe import MailboxReport, check_mailbox
from otp_bot.imap.reading import Fetched, IncomingMail, fetch_new, look, window_start
from otp_bot.imap.session import FolderState
from otp_bot.imap.used import UsedMail
from otp_bot.store.db import Store, Watermark

log = structlog.get_logger(__name__)

# First reconnect delay; doubles per failed attempt up to imap_backoff_max. A
# connection that got as far as a catch-up resets it.
BACKOFF_BASE = 0.5
# After stop is set, a call still blocked on the socket gets its socket
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

__all__ = [
    "IncomingMail",
    "MailHandler",
    "MailboxReport",
    "MailboxWatcher",
    "WatcherLinks",
    "WatcherState",
    "check_mailbox",
]


class WatcherState(StrEnum):
    """Where a mailbox watcher is (``/healthz``'s ``mailbox`` field)."""

    # Not running (before ``run`` and after it returned).
    STOPPED = "stopped"
    # Opening the connection, logging in, catching up.
    CONNECTING = "connecting"
    # Connected and waiting for mail (IDLE or polling): the healthy state.
    WATCHING = "watching"
    # The connection failed; waiting (with jitter) before reconnecting.
    BACKOFF = "backoff"
    # The server refused the credentials: loud, retried slowly.
    AUTH_FAILED = "auth_failed"


def backoff_delay(attempt: int, ceiling: float) -> float:
    """Exponential with "equal jitter": half fixed, half random."""
    delay: float = min(ceiling, BACKOFF_BASE * 2.0 ** min(attempt, 32))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not crypto


class MailboxWatcher:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        handler: MailHandler,
        *,
        links: WatcherLinks | None = None,
        key: str | None = None,
    ) -> None:
        """``key``: the name its watermark and Message-IDs are kept under (default: the
        account id; a mailbox shared by several accounts has one of its own)."""
        self.watching = asyncio.Event()
        self.last_progress = time.monotonic()
        self.state = WatcherState.STOPPED
        self.tried = False  # the first connection attempt ended (watching, or failed)
        self._settings = settings
        self._store = store
        self._key = key or settings.account_id
        about = {"account_id": settings.account_id} if key is None else {"mailbox": key}
        self._log = log.bind(**about, folder=settings.imap_folder)
        self._handoff = Handoff(store, self._key, settings.imap_folder, handler, self._log)
        self._links = links or WatcherLinks()
        self._imap = ImapLane(settings, tokens_for(settings), self._links.pool or shared_pool())
        self._used = UsedMail(settings, self._imap, self._links, self._log)
        self._lag = LagMeter(settings, self._links, self._log)
        self._behind = False  # the handler failed: retry soon
        self._caught_up = False  # this connection got through its catch-up
        self._stop = asyncio.Event()

    @property
    def waiting(self) -> bool:
        """True while waiting for mail (IDLE, or between polls): no thread is held then."""
        return self._imap.waiting

    def nudge(self) -> None:
        """A draft started waiting for a code: probe within OTP_BOT_IMAP_PROBE_INTERVAL.

        The IDLE under way is not ended now (its timeout is brought forward):
        the code's e-mail comes after the checkpoint, so probing at once would
        find nothing, and a storm of checkpoints would make it hundreds of
        needless DONE/NOOP/SEARCH/IDLE rounds just as their e-mails arrive.
        """
        self._imap.hurry(self._settings.imap_probe_interval)

    # --- life -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; returns within 2 s of it."""
        self._stop = stop
        guard = asyncio.create_task(self._stop_guard())
        try:
            await self._reconnect_loop()
        finally:
            guard.cancel()
            self._set_state(WatcherState.STOPPED)
            await self._imap.stop(STOP_ABORT_AFTER)
            self._log.info("mailbox_stopped")

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._caught_up = False
            try:
                await self._connected_life()
            except MailboxAuthError as exc:
                self.tried = True
                self._set_state(WatcherState.AUTH_FAILED)
                retry = self._settings.imap_auth_retry_interval
                self._log.error("mailbox_auth_failed", error=str(exc), retry_in=retry)
                await self._imap.close_session()
                await self._sleep(retry)
            except MailboxError as exc:
                attempt = 0 if self._caught_up else attempt + 1
                delay = backoff_delay(attempt, self._settings.imap_backoff_max)
                self.tried = True
                self._set_state(WatcherState.BACKOFF)
                self._log.warning("mailbox_disconnected", error=str(exc), backoff=round(delay, 2))
                await self._imap.close_session()
                await self._sleep(delay)

    async def _open(self) -> FolderState:
        # A thousand mailboxes starting at once must not stampede the server.
        async with self._links.connect_gate or contextlib.nullcontext():
            return await self._imap.open()

    async def _unless_stopped(
        self, opening: Coroutine[Any, Any, FolderState]
    ) -> FolderState | None:
        """``opening``'s folder, or None when stop is set first.

        A connect, TLS handshake or greeting that hangs runs inside the
        library's constructor, out of reach of ``abort()``: it is abandoned
        (its pool thread ends it within OTP_BOT_IMAP_TIMEOUT and closes it,
        ``Session.abort``), and so is a wait for the connect gate, so that a
        stop never waits for either.
        """
        task = asyncio.ensure_future(opening)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            return await task  # at once: it awaits the gate or the pool's future
        return None

    def _forget_old_message_ids(self) -> None:
        keep = max(SEEN_RETENTION, 2 * self._settings.imap_lookback)
        self._store.forget_seen_messages(self._key, time.time() - keep)

    async def _connected_life(self) -> None:
        self._set_state(WatcherState.CONNECTING)
        folder = await self._unless_stopped(self._open())
        if folder is None:
            return  # stopped while waiting to connect, or connecting
        self._log.info(
            "mailbox_connected",
            idle=folder.idle,
            move=folder.server.move,
            uidplus=folder.server.uidplus,
            uidvalidity=folder.uidvalidity,
            messages=folder.exists,
        )
        self._used.warn_degraded(folder)
        await self._start_position(folder.uidvalidity)
        count = await self._catch_up(live=False)
        self._log.info("mailbox_catchup", count=count)
        self._caught_up = True
        self._forget_old_message_ids()
        self._progress()
        self.watching.set()
        self.tried = True
        self._set_state(WatcherState.WATCHING)
        while not self._stop.is_set():
            await self._used.apply_due()
            # The look for new mail rides along with the end of the wait (one pool job):
            # only this watcher moves its watermark, so the one read now still holds then.
            mark = self._watermark()
            look_new = partial(look, self._imap.require(), mark.last_uid, CHUNK, self._limit)
            spoke, looked = await self._imap.wait_then(self._wait_for(folder), look_new)
            self._progress()
            if not self._stop.is_set():
                how = seen_by(idle=folder.idle, spoke=spoke)
                await self._catch_up(live=True, how=how, looked=(mark, looked))
                self._progress()

    def _wait_for(self, folder: FolderState) -> float:
        """How long the next IDLE (or poll) may last before the folder is probed."""
        settings = self._settings
        wait = settings.imap_idle_interval if folder.idle else settings.imap_poll_interval
        if self._links.awaiting_code():
            wait = min(wait, settings.imap_probe_interval)
        if self._behind:
            wait = min(wait, HANDLER_RETRY)
        due = self._used.next_due()
        if due is not None:
            wait = min(wait, max(0.0, due - time.monotonic()))
        return wait

    # --- catching up ------------------------------------------------------------

    async def _start_position(self, uidvalidity: int) -> None:
        """First start, or a new UIDVALIDITY: begin a bounded window back."""
        account, folder = self._key, self._settings.imap_folder
        mark = self._store.watermark(account, folder)
        if mark is not None and mark.uidvalidity == uidvalidity:
            return
        if mark is not None:
            self._log.warning("mailbox_uidvalidity_changed", old=mark.uidvalidity, new=uidvalidity)
        session = self._imap.require()
        start = await self._imap.call(window_start, session, self._settings.imap_lookback)
        self._log.info("mailbox_window_start", uidvalidity=uidvalidity, after_uid=start)
        self._store.set_watermark(account, folder, Watermark(uidvalidity, start))

    async def _catch_up(
        self,
        *,
        live: bool,
        how: str = "",
        looked: tuple[Watermark, tuple[list[int], list[Fetched]]] | None = None,
    ) -> int:
        """Hand off everything above the watermark, in UID order.

        ``live``: the watcher was watching, so this mail is new and its lag
        (arrival to now) says how fast the server's notifications are.
        ``looked``: the watermark and what ``look`` found above it, when the look
        already ran (along with the end of a wait).
        """
        session = self._imap.require()
        if looked is None:
            mark = self._watermark()
            found = await self._imap.call(look, session, mark.last_uid, CHUNK, self._limit)
        else:
            mark, found = looked
        uids, batch = found
        total = 0
        for index in range(0, len(uids), CHUNK):
            chunk = uids[index : index + CHUNK]
            if index:
                batch = await self._imap.call(fetch_new, session, chunk, self._limit)
            if live:
                self._lag.observe(batch, how)
            through = Watermark(mark.uidvalidity, chunk[-1])
            handed, done = await self._handoff.deliver(batch, through, self._stop)
            total += handed
            if not done:
                self._behind = not self._stop.is_set()
                return total
        self._behind = False
        return total

    def _watermark(self) -> Watermark:
        mark = self._store.watermark(self._key, self._settings.imap_folder)
        if mark is None:
            raise MailboxError("no watermark after start-up")
        return mark

    @property
    def _limit(self) -> int:
        return self._settings.imap_max_message_bytes

    # --- used mail ----------------------------------------------------------------

    async def after_use(self, mail: IncomingMail) -> None:
        """Apply OTP_BOT_MAIL_AFTER_USE to this message; errors are logged, not raised.

        Runs on the mailbox's IMAP lane between two of the watcher's own calls (an IDLE
        in progress is woken for it). While disconnected it waits for the next
        connection; a failed attempt is counted and tried again with backoff.
        """
        if self._settings.mail_after_use is not MailAction.LEAVE:
            await self._used.apply(mail)

    # --- small parts ------------------------------------------------------------------

    def _set_state(self, state: WatcherState) -> None:
        if state is not WatcherState.WATCHING:
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
