"""A mailbox's IMAP connection as the event loop sees it: calls on the shared pool,
IDLE waits on the loop.

Every blocking imap-tools call goes through ``call``: it runs on a thread of
the process-wide ``pool.ImapPool``, strictly one at a time and in order for
this connection (``pool.Lane``). ``wait`` is the IDLE wait, in three steps so
that no thread sleeps in it:

1. a pool thread sends IDLE and reads the continuation (``Session.begin_wait``);
2. the event loop waits for the socket to become readable (``add_reader``),
   a ``wake()`` or the timeout (which ``hurry()`` can bring forward); bytes
   already read by imaplib or TLS, which would never make the socket
   readable, end the wait before it starts;
3. a pool thread sends DONE and reads the answers (``Session.end_wait``).

The whole wait holds the connection's turn, so a call submitted meanwhile (an
after-use action) runs after DONE. A stuck call is made to fail from the
loop by ``abort()`` (the socket is shut down).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from otp_bot.config import Settings
from otp_bot.errors import MailboxError
from otp_bot.imap.auth import TokenSource
from otp_bot.imap.pool import ImapPool, Lane
from otp_bot.imap.session import FolderState, Session, Waiting

T = TypeVar("T")


class ImapLane:
    def __init__(self, settings: Settings, tokens: TokenSource | None, pool: ImapPool) -> None:
        self._settings = settings
        self._tokens = tokens
        self._lane = Lane(pool)
        self._turn = asyncio.Lock()  # a call, or a whole IDLE wait, at a time
        self._woken = False  # a wake() not yet consumed by a wait
        self._hurry_at: float | None = None  # a hurry() not yet consumed by a wait (loop time)
        self._waiter: asyncio.Future[bool] | None = None  # set while the loop waits
        self._timer: asyncio.TimerHandle | None = None  # ends the wait under way
        self.session: Session | None = None

    @property
    def waiting(self) -> bool:
        """True while the event loop waits in IDLE (or between polls) for this mailbox."""
        return self._waiter is not None

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        async with self._turn:
            return await self._run(partial(fn, *args))

    async def _run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the lane (holding the turn is the caller's business)."""
        return await asyncio.wrap_future(self._lane.submit(fn))

    async def open(self) -> FolderState:
        self.session = Session(self._settings, self._tokens)
        return await self.call(self.session.open)

    def require(self) -> Session:
        if self.session is None:
            raise MailboxError("not connected")
        return self.session

    # --- waiting --------------------------------------------------------------

    async def wait(self, seconds: float) -> bool:
        """Until the server speaks (True), ``seconds`` pass or ``wake()`` (False).

        Without IDLE it is a poll: wait, NOOP, True. A silent IDLE ends with a
        NOOP probe, so a dead connection is found here rather than at the next mail.
        """
        spoke, _ = await self.wait_then(seconds, _nothing)
        return spoke

    async def wait_then(self, seconds: float, then: Callable[[], T]) -> tuple[bool, T]:
        """``wait``, then ``then()`` on the pool thread that ended the wait, in the same job.

        A trip to a pool thread and back costs turns of the event loop, which take
        long when hundreds of mailboxes are busy at once: the look for new mail
        rides along with DONE instead of making a trip of its own.
        """
        session = self.require()
        async with self._turn:
            spoke = True  # cancelled before the wait: end_wait only ends IDLE, no probe
            try:
                waiting = await self._run(session.begin_wait)
                fd = session.fileno() if waiting is Waiting.IDLING else None
                if waiting in (Waiting.IDLING, Waiting.POLLING):
                    spoke = await self._until_readable(fd, seconds)
            except BaseException:  # cancelled or failed: DONE still goes before any later call
                self._lane.submit(partial(session.end_wait, spoke=spoke))
                raise
            return await self._run(partial(_end_then, session, spoke, then))

    async def _until_readable(self, fd: int | None, seconds: float) -> bool:
        if self._woken:
            self._woken = False
            return False
        loop = asyncio.get_running_loop()
        end = loop.time() + max(0.0, seconds)
        if self._hurry_at is not None:
            end, self._hurry_at = min(end, self._hurry_at), None
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        if fd is not None:
            loop.add_reader(fd, _settle, waiter, True)
        self._timer = loop.call_at(end, _settle, waiter, False)
        try:
            return await waiter
        finally:
            self._timer.cancel()
            self._timer = None
            if fd is not None:
                loop.remove_reader(fd)
            self._waiter = None
            self._woken = False

    def hurry(self, seconds: float) -> None:
        """End the current wait (or the next one) within ``seconds``, from the event loop.

        Unlike ``wake`` it sends nothing now: an IDLE just begun is not ended
        early, only its timeout is brought forward.
        """
        loop = asyncio.get_running_loop()
        at = loop.time() + max(0.0, seconds)
        if self._waiter is None or self._timer is None:
            self._hurry_at = at if self._hurry_at is None else min(self._hurry_at, at)
        elif self._timer.when() > at:
            self._timer.cancel()
            self._timer = loop.call_at(at, _settle, self._waiter, False)

    def wake(self) -> None:
        """End the current wait now, or the next one at once (from the event loop)."""
        self._woken = True
        if self._waiter is not None:
            _settle(self._waiter, False)

    # --- ending ---------------------------------------------------------------

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
        """Close the session (LOGOUT, else abort) within ``within`` s."""
        self.wake()  # a wait still in progress returns at once
        await self.close_session(within)


def _end_then(session: Session, spoke: bool, then: Callable[[], T]) -> tuple[bool, T]:
    """End the wait (DONE, or a NOOP probe), then run ``then`` (on a pool thread)."""
    return session.end_wait(spoke=spoke), then()


def _nothing() -> None:
    return None


def _settle(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)
