"""IMAP calls on a pool shared by every mailbox: in order per mailbox, IDLE waits
that hold no thread, stuck connects that do not starve the others."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from otp_bot.imap.lane import ImapLane
from otp_bot.imap.pool import ImapPool, Lane, pool_size
from otp_bot.imap.reading import look
from otp_bot.imap.session import Session, Waiting
from otp_bot.imap.watcher import MailboxWatcher, WatcherLinks
from tests.dovecot import Dovecot, simple_message
from tests.mailbox_helpers import Recorder, linkedin_message, running, settings_for, until

# Bound for a thread-side condition (the pool's own threads finishing a job).
THREAD_TIMEOUT = 20.0


def _blocking(started: threading.Event, release: threading.Event) -> Callable[[], str]:
    def job() -> str:
        started.set()
        if not release.wait(THREAD_TIMEOUT):
            raise TimeoutError("the test never released the job")
        return "released"

    return job


def test_lane_calls_run_in_order_one_at_a_time() -> None:
    """A lane's second call does not start while its first blocks, even with a pool
    thread free; another lane's call runs on that thread meanwhile."""
    pool = ImapPool(2)
    first, other = Lane(pool), Lane(pool)
    started, release = threading.Event(), threading.Event()
    second_ran = threading.Event()
    blocked = first.submit(_blocking(started, release))
    assert started.wait(THREAD_TIMEOUT)
    second = first.submit(second_ran.set)  # queued on the pool before the other lane's call
    assert other.submit(lambda: "other").result(THREAD_TIMEOUT) == "other"
    # The free thread took jobs in order: had the second call been on the pool, it ran first.
    assert not second_ran.is_set()
    release.set()
    assert blocked.result(THREAD_TIMEOUT) == "released"
    second.result(THREAD_TIMEOUT)
    assert second_ran.is_set()
    assert pool.threads <= 2


def test_lanes_keep_their_order_on_a_small_pool() -> None:
    """Three lanes' 300 calls each on two threads: every lane sees its calls in order."""
    pool = ImapPool(2)
    lanes = [Lane(pool) for _ in range(3)]
    seen: list[list[int]] = [[], [], []]
    futures = [
        lanes[n].submit(lambda n=n, i=i: seen[n].append(i))  # type: ignore[misc]
        for i in range(300)
        for n in range(3)
    ]
    for future in futures:
        future.result(THREAD_TIMEOUT)
    assert seen == [list(range(300))] * 3
    assert pool.threads <= 2


def test_errors_reach_the_caller_and_the_lane_goes_on() -> None:
    """A call that raises hands its exception to its caller; the next call still runs."""
    lane = Lane(ImapPool(1))

    def fail() -> None:
        raise OSError("connection reset")

    failed = lane.submit(fail)
    after = lane.submit(lambda: "after")
    with pytest.raises(OSError, match="connection reset"):
        failed.result(THREAD_TIMEOUT)
    assert after.result(THREAD_TIMEOUT) == "after"


async def test_idle_pool_threads_end_and_come_back() -> None:
    """Threads idle past the pool's idle time end; the next call starts one again."""
    pool = ImapPool(2, idle_exit=0.05)
    lanes = [Lane(pool), Lane(pool)]
    started = [threading.Event(), threading.Event()]
    release = threading.Event()
    jobs = [lane.submit(_blocking(s, release)) for lane, s in zip(lanes, started, strict=True)]
    assert all(s.wait(THREAD_TIMEOUT) for s in started)
    assert pool.threads == 2
    release.set()
    for job in jobs:
        job.result(THREAD_TIMEOUT)
    await until(lambda: pool.threads == 0)
    assert lanes[0].submit(lambda: "again").result(THREAD_TIMEOUT) == "again"


def test_pool_has_threads_beyond_the_connect_concurrency() -> None:
    """Logins stuck up to the connect concurrency always leave threads for other calls."""
    assert all(pool_size(n) > n for n in (1, 32, 1000))


async def test_many_idle_waits_share_two_threads(dovecot: Dovecot, tmp_path: Path) -> None:
    """Six mailboxes wait in IDLE at once on a pool of two threads; all see the new mail."""
    pool = ImapPool(2)
    recorders = [Recorder() for _ in range(6)]
    async with contextlib.AsyncExitStack() as stack:
        watchers: list[MailboxWatcher] = []
        for index, recorder in enumerate(recorders):
            settings = settings_for(dovecot, tmp_path / f"a{index}", account_id=f"acct-{index}")
            watcher = await stack.enter_async_context(
                running(settings, recorder, links=WatcherLinks(pool=pool))
            )
            watchers.append(watcher)
        await until(lambda: all(w.waiting for w in watchers))  # six IDLEs in progress
        assert pool.threads <= 2
        uid = dovecot.append(linkedin_message())
        for recorder in recorders:
            await recorder.wait_for(1)
        assert all(recorder.uids == [uid] for recorder in recorders)
        assert pool.threads <= 2


@pytest.fixture
async def lane(dovecot: Dovecot, tmp_path: Path) -> AsyncIterator[ImapLane]:
    """A mailbox connected to Dovecot on a one-thread pool, stopped afterwards."""
    opened = ImapLane(settings_for(dovecot, tmp_path), None, ImapPool(1))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.stop(1.0)


async def test_wake_ends_idle_and_a_waiting_call_runs_after_done(lane: ImapLane) -> None:
    """wake() ends a long IDLE at once (False: the server did not speak); a call made
    during the IDLE runs after DONE, so the server never sees a command inside IDLE."""
    session = lane.require()
    waiting = asyncio.create_task(lane.wait(3600))
    await until(lambda: lane.waiting)
    search = asyncio.create_task(lane.call(session.search_above, 0))
    lane.wake()
    assert await asyncio.wait_for(waiting, THREAD_TIMEOUT) is False
    assert await asyncio.wait_for(search, THREAD_TIMEOUT) == []
    assert not lane.waiting


async def test_the_look_for_new_mail_rides_along_with_the_end_of_idle(
    dovecot: Dovecot, lane: ImapLane
) -> None:
    """wait_then runs its follow-up after DONE in the same pool job (one trip to a pool
    thread per wake instead of three): mail announced in IDLE comes back searched and
    fetched with the wait's answer, on a one-thread pool."""
    session = lane.require()
    look_new = partial(look, session, 0, 100, 1 << 20)
    waiting = asyncio.create_task(lane.wait_then(3600, look_new))
    await until(lambda: lane.waiting)
    uid = dovecot.append(linkedin_message())
    spoke, (uids, batch) = await asyncio.wait_for(waiting, THREAD_TIMEOUT)
    assert spoke is True
    assert uids == [uid]
    assert [fetched.mail.uid for fetched in batch] == [uid]
    assert batch[0].candidate
    assert batch[0].mail.complete  # the whole message came with it
    assert await lane.call(session.search_above, uid) == []  # out of IDLE: it answers


async def test_wake_before_the_wait_is_kept(lane: ImapLane) -> None:
    """A wake() while a call runs is not lost: the next wait returns at once."""
    lane.wake()
    assert await asyncio.wait_for(lane.wait(3600), THREAD_TIMEOUT) is False


async def test_hurry_brings_the_timeout_forward_without_ending_idle(
    dovecot: Dovecot, lane: ImapLane
) -> None:
    """hurry() (a draft started waiting for a code) leaves the IDLE under way running, so
    mail announced meanwhile ends it (True), where wake() would have ended it at once;
    with nothing announced the wait ends at the nearer timeout (False), not the hour."""
    waiting = asyncio.create_task(lane.wait(3600))
    await until(lambda: lane.waiting)
    lane.hurry(0.2)
    lane.hurry(3600)  # a later deadline never postpones a nearer one
    assert await asyncio.wait_for(waiting, THREAD_TIMEOUT) is False
    waiting = asyncio.create_task(lane.wait(3600))
    await until(lambda: lane.waiting)
    lane.hurry(THREAD_TIMEOUT)  # far beyond Dovecot's notice of the mail below
    dovecot.append(linkedin_message())
    assert await asyncio.wait_for(waiting, THREAD_TIMEOUT) is True


async def test_hurry_between_waits_shortens_the_next_one(lane: ImapLane) -> None:
    """A hurry() while no wait is under way (a call runs, say) holds for the next wait."""
    lane.hurry(0.2)
    assert await asyncio.wait_for(lane.wait(3600), THREAD_TIMEOUT) is False
    assert not lane.waiting


@pytest.mark.parametrize("security", ["none", "tls", "starttls"])
async def test_notice_buffered_with_the_continuation_ends_the_wait(
    dovecot_tls: Dovecot, tmp_path: Path, security: str
) -> None:
    """Mail that came between the last search and IDLE is announced with the IDLE
    continuation, into imaplib's (or TLS's) buffer, where the socket's readiness
    cannot show it: the wait ends at once instead of after its hour."""
    assert dovecot_tls.certs is not None
    port = dovecot_tls.tls_port if security == "tls" else dovecot_tls.port
    settings = settings_for(
        dovecot_tls,
        tmp_path,
        imap_host="localhost",
        imap_port=port,
        imap_security=security,
        imap_ca_file=dovecot_tls.certs.ca,
    )
    lane = ImapLane(settings, None, ImapPool(1))
    await lane.open()
    try:
        session = lane.require()
        assert await lane.call(session.search_above, 0) == []
        uid = dovecot_tls.append(simple_message("between search and IDLE"))
        assert await asyncio.wait_for(lane.wait(3600), THREAD_TIMEOUT) is True
        assert await lane.call(session.search_above, 0) == [uid]
    finally:
        await lane.stop(1.0)


def test_begin_wait_sees_the_buffered_notice(dovecot: Dovecot, tmp_path: Path) -> None:
    """begin_wait reports the notice that came with the continuation as buffered; DONE
    then ends the IDLE cleanly and the mail is found."""
    session = Session(settings_for(dovecot, tmp_path), None)
    try:
        session.open()
        assert session.search_above(0) == []
        uid = dovecot.append(simple_message("between search and IDLE"))
        assert session.begin_wait() is Waiting.BUFFERED
        assert session.end_wait(spoke=True) is True
        assert session.search_above(0) == [uid]
    finally:
        session.close()


class Silent:
    """A server that accepts connections and never says a word (no IMAP greeting)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self._listener.accept()[0])

    def close(self) -> None:
        for sock in [self._listener, *self.accepted]:
            sock.close()


async def test_stuck_connects_leave_a_thread_for_other_mailboxes(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """Two logins hang on a silent server (as many as may connect at once) while a
    third mailbox, on a pool one thread larger, still sees its new mail."""
    pool, gate = ImapPool(3), asyncio.Semaphore(2)
    links = WatcherLinks(pool=pool, connect_gate=gate)
    silent = Silent()
    recorder = Recorder()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(
                running(settings_for(dovecot, tmp_path), recorder, links=links)
            )
            for index in range(2):
                settings = settings_for(
                    dovecot,
                    tmp_path / f"silent{index}",
                    account_id=f"acct-silent-{index}",
                    imap_port=silent.port,
                    imap_timeout=60,
                )
                await stack.enter_async_context(
                    running(settings, Recorder(), wait_watching=False, links=links)
                )
            await until(lambda: len(silent.accepted) == 2)  # both logins wait for a greeting
            uid = dovecot.append(linkedin_message())
            await recorder.wait_for(1)
            assert recorder.uids == [uid]
            silent.close()  # the hung logins fail now, so their watchers can stop
    finally:
        silent.close()


def test_a_thread_that_cannot_start_is_logged_and_the_job_still_runs() -> None:
    """When no thread can be started (here: a stack no mmap can give), the pool says so
    (imap_thread_failed) and keeps the job; the next call starts a thread and both run."""
    pool = ImapPool(2)
    lane, other = Lane(pool), Lane(pool)
    previous = threading.stack_size(1 << 60)  # beyond any address space
    try:
        with capture_logs() as logs:
            stranded = lane.submit(lambda: "stranded")
    finally:
        threading.stack_size(previous)
    assert [e["event"] for e in logs] == ["imap_thread_failed"]
    assert logs[0]["threads"] == 0
    assert pool.threads == 0
    assert other.submit(lambda: "next").result(THREAD_TIMEOUT) == "next"
    assert stranded.result(THREAD_TIMEOUT) == "stranded"


async def test_threads_that_retire_after_a_backlog_leave_no_job_stranded() -> None:
    """Calls queued while every thread was busy, then threads retiring idle: a later call
    still gets a thread (the pool never believes in an idle thread that is gone)."""
    pool = ImapPool(2, idle_exit=0.05)
    started = [threading.Event(), threading.Event()]
    release = threading.Event()
    blocked = [Lane(pool).submit(_blocking(s, release)) for s in started]
    assert all(s.wait(THREAD_TIMEOUT) for s in started)
    backlog = [Lane(pool).submit(lambda i=i: i) for i in range(6)]  # type: ignore[misc]
    release.set()
    assert [job.result(THREAD_TIMEOUT) for job in blocked] == ["released"] * 2
    assert [job.result(THREAD_TIMEOUT) for job in backlog] == list(range(6))
    await until(lambda: pool.threads == 0)
    assert Lane(pool).submit(lambda: "later").result(THREAD_TIMEOUT) == "later"
