"""The watcher's one IMAP thread: a single-worker executor, the session it owns,
and a pipe that wakes the thread out of IDLE (for a stop or an after-use action).

All blocking imap-tools calls go through ``call``, so they run one at a time,
in order, on the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from otp_bot.config import Settings
from otp_bot.errors import MailboxError
from otp_bot.mailbox_auth import TokenSource
from otp_bot.mailbox_session import FolderState, Session

T = TypeVar("T")


class ImapThread:
    def __init__(self, settings: Settings, tokens: TokenSource | None) -> None:
        self._settings = settings
        self._tokens = tokens
        self._executor: ThreadPoolExecutor | None = None
        self._wake_fds: tuple[int, int] | None = None
        self.session: Session | None = None

    def start(self) -> None:
        self._wake_fds = os.pipe()
        for fd in self._wake_fds:
            os.set_blocking(fd, False)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="otp-bot-imap")

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise MailboxError("the mailbox watcher is not running")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    async def open(self) -> FolderState:
        wake = self._wake_fds[0] if self._wake_fds else None
        self.session = Session(self._settings, self._tokens, wake)
        return await self.call(self.session.open)

    def require(self) -> Session:
        if self.session is None:
            raise MailboxError("not connected")
        return self.session

    def wake(self) -> None:
        if self._wake_fds is not None:
            # A full pipe means a wake-up is already pending.
            with contextlib.suppress(OSError):
                os.write(self._wake_fds[1], b"!")

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
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        for fd in self._wake_fds or ():
            os.close(fd)
        self._wake_fds = None
