"""Threads for blocking IMAP calls, shared by every mailbox of the process.

imaplib blocks, so its calls run on threads; but a thread per mailbox makes
1,000 accounts 1,000 threads, most of them asleep in IDLE. Here a bounded
``ImapPool`` runs the calls of every mailbox, and each mailbox gets a
``Lane``: its calls still run strictly one at a time and in the order they
were submitted (an IMAP connection is a conversation), on whichever pool
thread is free. An IDLE wait holds no thread at all (``lane.ImapLane.wait``).

The pool grows a thread only when every thread is busy, up to its size, and
a thread idle for ``THREAD_IDLE_EXIT`` seconds ends. Its threads are daemons:
a connect stuck on an unreachable host (bounded by the socket timeout, but
still) never holds up the process exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import structlog

from otp_bot.config import Settings

T = TypeVar("T")
log = structlog.get_logger(__name__)

# A pool thread with nothing to do for this long ends (the pool grows again on
# demand): a start-up burst of logins leaves no crowd of idle threads behind.
THREAD_IDLE_EXIT = 60.0
# Pool threads beyond the mailboxes that may be connecting at once: a burst of
# logins stuck on an unreachable host (each up to OTP_BOT_IMAP_TIMEOUT) leaves
# these for every other mailbox's calls.
SPARE_THREADS = 16
THREAD_NAME = "otp-bot-imap"


def pool_size(connect_concurrency: int) -> int:
    """Threads for a process whose mailboxes connect at most this many at once."""
    return connect_concurrency + SPARE_THREADS


class ImapPool:
    """At most ``size`` daemon threads running submitted jobs, started on demand.

    Jobs are queued under the pool's lock; a thread counts as waiting only
    while it blocks on the queue, and retires only when it finds the queue
    empty under the lock, so no job is ever left queued with no thread to run it.
    """

    def __init__(self, size: int, *, idle_exit: float = THREAD_IDLE_EXIT) -> None:
        if size < 1:
            raise ValueError("an IMAP pool needs at least one thread")
        self.size = size
        self._idle_exit = idle_exit
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # alive
        self._waiting = 0  # blocked on the queue (or just about to be)
        self._ever = 0  # started so far (thread names)

    @property
    def threads(self) -> int:
        """Pool threads alive now."""
        with self._lock:
            return self._threads

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a pool thread (it must not raise); never raises itself."""
        with self._lock:
            self._jobs.put(job)
            if self._jobs.qsize() <= self._waiting or self._threads >= self.size:
                return  # a waiting thread takes it, or the next one to finish a job
            self._threads += 1
            self._ever += 1
            name = f"{THREAD_NAME}-{self._ever}"
        try:
            threading.Thread(target=self._serve, name=name, daemon=True).start()
        except RuntimeError as exc:  # out of threads (RLIMIT_NPROC, memory)
            failure = str(exc)
        else:
            return
        # The job waits for a running thread; the next job tries to start one again.
        with self._lock:
            self._threads -= 1
            running = self._threads
        log.error("imap_thread_failed", error=failure, threads=running)

    def _serve(self) -> None:
        while (job := self._next_job()) is not None:
            job()

    def _next_job(self) -> Callable[[], None] | None:
        """The next job; None when there was none for ``idle_exit`` s (the thread ends)."""
        while True:
            with self._lock:
                self._waiting += 1
            try:
                job = self._jobs.get(timeout=self._idle_exit)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if self._jobs.empty():  # jobs are put under this lock: none is missed
                        self._threads -= 1
                        return None
                continue
            with self._lock:
                self._waiting -= 1
            return job


class Lane:
    """One mailbox's calls: in submission order, one at a time, on the pool's threads."""

    def __init__(self, pool: ImapPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        # A list, not a deque: it rarely holds more than one call, and an empty deque
        # costs a 64-slot block (about 0.5 kB a mailbox).
        self._queue: list[tuple[Future[Any], Callable[[], Any]]] = []
        self._busy = False  # a job of this lane is on the pool (queued or running)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            self._queue.append((future, fn))
            if self._busy:
                return future  # runs after the ones before it
            self._busy = True
        self._pool.run(self._next)
        return future

    def _next(self) -> None:
        with self._lock:
            future, fn = self._queue.pop(0)
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits it
                future.set_exception(exc)
        with self._lock:
            self._busy = bool(self._queue)
            if not self._busy:
                return
        # Back of the pool's queue: other mailboxes' calls are not held up by a long lane.
        self._pool.run(self._next)


_shared: ImapPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ImapPool:
    """The process's default pool (sized for the default connect concurrency), made once."""
    global _shared  # noqa: PLW0603 - one pool per process, made on first use
    with _shared_lock:
        if _shared is None:
            _shared = ImapPool(pool_size(Settings.model_fields["imap_connect_concurrency"].default))
        return _shared
