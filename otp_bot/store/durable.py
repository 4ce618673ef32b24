"""The durability barrier: commits are cheap, and made durable only before a side effect.

The state database runs ``journal_mode=WAL`` with ``synchronous=NORMAL``: a
commit appends to the write-ahead log and returns without ``fsync`` (about
20 µs instead of a disk flush). That keeps every commit across a crash of
the *process* (the log is in the kernel's page cache; SIGKILL, OOM and
restarts lose nothing). Only a crash of the *machine* can lose the newest
commits, and then only a suffix: WAL recovery stops at the last intact
commit, so the database is always some earlier, consistent state.

Losing a suffix matters only if something outside saw it. So before each
side effect that depends on a commit (a publish or checkpoint submission
under its stored idempotency key and input, a control API answer saying a
draft is queued) the caller awaits ``WalSync.durable()``: the log is
fsynced up to that commit. Calls that arrive while a flush runs share the
next one (group commit), and the flush runs on this module's thread, never
on the event loop. After a power loss the daemon therefore restarts from a
state at least as new as anything it acted on, which is the guarantee
``synchronous=FULL`` gave, at one flush per side effect instead of one per
commit (about 11 per draft).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from otp_bot.errors import StoreError


class WalSync:
    """Flushes one database's write-ahead log on demand, grouping concurrent callers."""

    def __init__(self, db_path: Path) -> None:
        self._wal = db_path.with_name(db_path.name + "-wal")
        self._cond = threading.Condition()
        self._committed = 0  # commits returned so far (their frames are in the log)
        self._synced = 0  # commits known to be on disk
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self.flushes = 0  # how many fsyncs ran (the tests count them)

    def committed(self) -> None:
        """One more commit returned (called by ``Store`` under its lock)."""
        self._committed += 1

    async def durable(self) -> None:
        """Return once every commit made before this call is on disk."""
        if self._synced >= self._committed:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed:
                raise StoreError("state database closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wal-sync", daemon=True)
                self._thread.start()
            self._waiters.append((loop, future))
            self._cond.notify()
        await future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiters and not self._closed:
                    self._cond.wait()
                batch, self._waiters = self._waiters, []
                if not batch and self._closed:
                    return
                upto = self._committed
            error = self._flush()
            if error is None:
                self._synced = max(self._synced, upto)
            for loop, future in batch:
                loop.call_soon_threadsafe(_settle, future, error)

    def _flush(self) -> StoreError | None:
        try:
            fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # no log yet: nothing was written since the last checkpoint
        except OSError as exc:
            return StoreError(f"cannot open the state database log {self._wal}: {exc}")
        try:
            os.fsync(fd)  # flushes the file (the inode), whichever descriptor names it
            self.flushes += 1
        except OSError as exc:
            return StoreError(f"state database flush failed: {exc}")
        finally:
            os.close(fd)
        return None


def _settle(future: asyncio.Future[None], error: StoreError | None) -> None:
    if future.done():  # the waiter was cancelled (shutdown): nothing to tell
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
