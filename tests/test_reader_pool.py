"""Several reader children: mail of different accounts read at once, a stuck child
holding up only its own mail, and how many children OTP_BOT_MAIL_READERS means."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from otp_bot.solve.reader import TooSlow
from otp_bot.solve.reader_child import Reading
from otp_bot.solve.readers import AUTO_MAX, ReaderPool, reader_count
from tests.emails.timing import build
from tests.mailbox_helpers import until

GENUINE = build("text", "a", 1024)
HEAVY = build("html", "<a ", 1 << 20)  # far over TINY_BUDGET (see test_reader.py)
TINY_BUDGET = 0.001
# A stopped child is killed after 4 budgets + 1 s: room for the other child to answer.
BUDGET = 1.0
# Far below the reader's START_TIMEOUT (30 s): a mail that waited for the held-up start
# would fail the test rather than hang it.
GATHER_WITHIN = 15.0


@pytest.fixture
async def pool() -> AsyncIterator[ReaderPool]:
    pool = ReaderPool(limit=2)
    try:
        yield pool
    finally:
        await pool.close()


async def test_two_mails_at_once_start_a_second_child(pool: ReaderPool) -> None:
    """Two readings in flight together start a second child (only because the first
    is busy); both answer, and the second child runs on for the next mails."""
    found = await asyncio.gather(
        pool.read(GENUINE, Reading(), BUDGET), pool.read(GENUINE, Reading(), BUDGET)
    )
    assert [f.code for f in found] == ["482913", "482913"]
    await until(lambda: pool.started == 2)  # it starts in its own task, mail or not
    assert len(set(pool.pids)) == 2


async def test_no_mail_waits_for_a_child_being_started(
    pool: ReaderPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mail queued while a second child starts is read by the first child as soon as
    that one is free: the child being started (held at start-up here until the end)
    takes no mail before it is ready."""
    await pool.start()
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    # Children started from now on block at start-up, opening the gate, until it opens.
    (tmp_path / "sitecustomize.py").write_text(f"open({str(gate)!r}).read()\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    try:
        readings = [pool.read(GENUINE, Reading(), BUDGET) for _ in range(2)]
        found = await asyncio.wait_for(asyncio.gather(*readings), GATHER_WITHIN)
        assert [f.code for f in found] == ["482913", "482913"]
        assert pool.started == 1  # both read by the first child
        assert len(pool.pids) == 2  # while the second one was being started
    finally:
        with contextlib.suppress(OSError):  # no child waiting at the gate: nothing to open
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))


async def test_start_readies_one_child_the_first_mail_then_uses(pool: ReaderPool) -> None:
    """start() runs a child before any mail; the first mail is read by that one."""
    await pool.start()
    (pid,) = pool.pids
    assert (await pool.read(GENUINE, Reading(), BUDGET)).code == "482913"
    assert pool.pids == [pid]
    assert pool.started == 1


async def test_start_runs_a_child_per_account_within_the_limit() -> None:
    """start(accounts) runs one child per account, up to the limit, before any mail, so a
    storm (one mail per account at once) waits for no start; called again with more
    accounts (a reload), it adds only what is missing."""
    pool = ReaderPool(limit=3)
    try:
        await pool.start(2)
        assert pool.started == 2
        first = set(pool.pids)
        assert len(first) == 2
        await until(lambda: pool.idle == 2)  # both children's tasks wait for mail
        found = await asyncio.gather(*(pool.read(GENUINE, Reading(), BUDGET) for _ in range(2)))
        assert [f.code for f in found] == ["482913", "482913"]
        assert set(pool.pids) == first  # the storm of two started nothing
        await pool.start(500)
        assert pool.started == 3  # the limit, not one per account
        assert first < set(pool.pids)
        await pool.start(1)
        assert pool.started == 3  # fewer accounts stop no child
    finally:
        await pool.close()


async def test_one_mail_at_a_time_keeps_one_child(pool: ReaderPool) -> None:
    """Mail read one after the other reuses the same child: a quiet daemon runs one."""
    for _ in range(3):
        assert (await pool.read(GENUINE, Reading(), BUDGET)).code == "482913"
    assert pool.started == 1


async def test_a_stuck_child_holds_up_only_its_own_mail(pool: ReaderPool) -> None:
    """With one child stopped (as one stuck in C code would be), the other mail in
    flight is answered while the stuck one waits; the stuck child is then killed at
    its hard deadline and replaced, and the pool reads on."""
    await asyncio.gather(
        pool.read(GENUINE, Reading(), BUDGET), pool.read(GENUINE, Reading(), BUDGET)
    )
    # Both children running and waiting: the queue hands the next two mails one to
    # each (its waiters are served in turn), so the stopped child surely gets one.
    # Without this, the free child could read both while the other was still starting.
    await until(lambda: len(pool.pids) == 2 and pool.idle == 2)
    stuck = pool.pids[0]
    os.kill(stuck, signal.SIGSTOP)
    readings = [asyncio.create_task(pool.read(GENUINE, Reading(), BUDGET)) for _ in range(2)]
    done, pending = await asyncio.wait(readings, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1
    assert len(pending) == 1
    assert done.pop().result().code == "482913"
    with pytest.raises(TooSlow) as refused:
        await pending.pop()
    assert refused.value.killed is True
    assert stuck not in pool.pids
    found = await asyncio.gather(
        pool.read(GENUINE, Reading(), BUDGET), pool.read(GENUINE, Reading(), BUDGET)
    )
    assert [f.code for f in found] == ["482913", "482913"]
    assert pool.started == 3  # the killed child's place went to a fresh one


async def test_a_mail_over_budget_beside_a_genuine_one(pool: ReaderPool) -> None:
    """A mail over its budget is refused by its own child's timer while a genuine mail
    read at the same time gets its code; no child is killed or replaced."""
    heavy = pool.read(HEAVY, Reading(), TINY_BUDGET)
    genuine = pool.read(GENUINE, Reading(), BUDGET)
    results = await asyncio.gather(heavy, genuine, return_exceptions=True)
    assert isinstance(results[0], TooSlow)
    assert results[0].killed is False
    assert not isinstance(results[1], BaseException)
    assert results[1].code == "482913"
    await until(lambda: pool.started == 2)  # the second child starts in its own task
    assert len(set(pool.pids)) == 2  # both alive: none killed


async def test_close_ends_every_child(pool: ReaderPool) -> None:
    """After close() no child of the pool is left running."""
    await asyncio.gather(
        pool.read(GENUINE, Reading(), BUDGET), pool.read(GENUINE, Reading(), BUDGET)
    )
    pids = pool.pids
    await pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_caller_that_gives_up_takes_its_mail_out_of_the_queue() -> None:
    """A reading cancelled while it waits for a child is never sent to one; the next
    mail is read as usual."""
    pool = ReaderPool(limit=1)
    try:
        first = asyncio.create_task(pool.read(GENUINE, Reading(), BUDGET))
        second = asyncio.create_task(pool.read(HEAVY, Reading(), BUDGET))
        await asyncio.sleep(0)  # one turn of the loop: both tasks run up to their wait
        second.cancel()
        assert (await first).code == "482913"
        with pytest.raises(asyncio.CancelledError):
            await second
        assert (await pool.read(GENUINE, Reading(), BUDGET)).code == "482913"
        assert pool.started == 1
    finally:
        await pool.close()


def test_reader_count_follows_the_setting_or_the_cpus() -> None:
    """OTP_BOT_MAIL_READERS=n means n; 0 means two per usable CPU, at least 1, at most 4."""
    assert reader_count(3) == 3
    cpus = len(os.sched_getaffinity(0))
    assert reader_count(0) == max(1, min(AUTO_MAX, 2 * cpus))
