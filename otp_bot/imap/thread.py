"""The watcher's one IMAP thread, the session it owns, and an eventfd that wakes the
thread out of IDLE (for a stop or an after-use action).

All blocking imap-tools calls go through ``call``, so they run one at a time,
in order, on the same thread. The thread is a daemon: a connect stuck on an
unreachable host (bounded by the socket timeout, but still) never holds up
the process exit after ``run()`` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

from otp_bot.config import Settings
from otp_bot.errors import MailboxError
from otp_bot.imap.auth import TokenSource
from otp_bot.imap.session import FolderState, Session

T = TypeVar("T")


class _Worker:
    """A single daemon thread running submitted calls in order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self._queue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="otp-bot-imap", daemon=True).start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn))
        return future

    def shutdown(self) -> None:
        self._queue.put(None)

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                future.set_exception(exc)


class ImapThread:
    def __init__(self, settings: Settings, tokens: TokenSource | None) -> None:
        self._settings = settings
        self._tokens = tokens
        self._worker: _Worker | None = None
        self._wake_fd: int | None = None  # an eventfd: one descriptor, not a pipe's two
        self.session: Session | None = None

    def start(self) -> None:
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._worker = _Worker()

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        if self._worker is None:
            raise MailboxError("the mailbox watcher is not running")
        return await asyncio.wrap_future(self._worker.submit(partial(fn, *args)))

    async def open(self) -> FolderState:
        self.session = Session(self._settings, self._tokens, self._wake_fd)
        return await self.call(self.session.open)

    def require(self) -> Session:
        if self.session is None:
            raise MailboxError("not connected")
        return self.session

    def wake(self) -> None:
        if self._wake_fd is not None:
            # A full counter means a wake-up is already pending.
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake_fd, 1)

    def abort(self) -> None:
        """Make a call blocked on the socket fail now (from the event loop's thread)."""
        if self.session is not None:
            self.session.abort()

    async def close_session(self, within: float | None = None) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            await asyncio.wait_for(self.call(session.close), within)
        except TimeoutError:
            session.abort()

    async def stop(self, within: float) -> None:
        """Close the session (LOGOUT, else abort) within ``within`` s and let the thread go."""
        self.wake()  # a thread still waiting in IDLE returns at once
        await self.close_session(within)
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        if self._wake_fd is not None:
            os.close(self._wake_fd)
        self._wake_fd = None
