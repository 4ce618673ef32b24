"""The worker's loop on its own: steps, idles, wakes, failures, stop and abort."""

from __future__ import annotations

import asyncio
import math

from structlog.testing import capture_logs

from otp_bot.solve.loop import STEP_RETRY_S, StepLoop

WAIT = 10.0  # generous bound for a condition to be reached; never a synchronisation sleep


class Steps:
    """Step functions whose calls the tests count and hold up."""

    def __init__(self) -> None:
        self.calls = 0
        self.after: list[int] = []  # self.calls each time after_step ran
        self.stepped = asyncio.Condition()
        self.release = asyncio.Event()  # a held step returns once this is set
        self.ended: list[str] = []  # how each held step ended

    async def notify(self) -> None:
        self.calls += 1
        async with self.stepped:
            self.stepped.notify_all()

    async def until(self, calls: int) -> None:
        async def waiting() -> None:
            async with self.stepped:
                await self.stepped.wait_for(lambda: self.calls >= calls)

        await asyncio.wait_for(waiting(), WAIT)

    async def idle_for_ever(self) -> float:
        await self.notify()
        return math.inf

    async def fail_first(self) -> float:
        await self.notify()
        if self.calls == 1:
            raise RuntimeError("database unwritable")
        return math.inf

    async def held(self) -> float:
        await self.notify()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        self.ended.append("finished")
        return math.inf

    def after_step(self) -> None:
        self.after.append(self.calls)


def loop_of(steps: Steps, step_name: str, wake: asyncio.Event) -> StepLoop:
    return StepLoop("acc_loop", getattr(steps, step_name), steps.after_step, wake)


async def test_wake_ends_an_idle_at_once() -> None:
    """A step that asks to idle for ever is followed by the next as soon as wake is set;
    after_step runs after each step."""
    steps, wake, stop = Steps(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(loop_of(steps, "idle_for_ever", wake).run(stop))
    await steps.until(1)
    wake.set()
    await steps.until(2)
    stop.set()
    await asyncio.wait_for(task, WAIT)
    assert steps.calls == 2
    assert steps.after == [1, 2]


async def test_a_failing_step_is_logged_and_the_next_one_comes() -> None:
    """A step that raises is logged as worker_step_failed with its retry delay, skips
    after_step, and the loop steps again after STEP_RETRY_S."""
    steps, wake, stop = Steps(), asyncio.Event(), asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(loop_of(steps, "fail_first", wake).run(stop))
        await steps.until(2)
        stop.set()
        await asyncio.wait_for(task, WAIT)
    failed = [e for e in logs if e["event"] == "worker_step_failed"]
    assert [(e["account_id"], e["retry_in"], e["log_level"]) for e in failed] == [
        ("acc_loop", STEP_RETRY_S, "error")
    ]
    assert steps.after == [2]


async def test_stop_lets_the_step_under_way_finish() -> None:
    """With an abort event given, stop alone does not cancel the step under way: run returns
    once that step has finished (an account removed by a reload)."""
    steps, wake, stop, abort = Steps(), asyncio.Event(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(loop_of(steps, "held", wake).run(stop, abort))
    await steps.until(1)
    stop.set()
    for _ in range(20):  # give the loop turns in which a wrong one would cancel the step
        await asyncio.sleep(0)
    assert not task.done()
    steps.release.set()
    await asyncio.wait_for(task, WAIT)
    assert steps.ended == ["finished"]
    assert steps.calls == 1


async def test_abort_cancels_the_step_under_way() -> None:
    """abort, or stop when no abort event is given, cancels the step under way; run returns."""
    for with_abort in (True, False):
        steps, wake, stop, abort = Steps(), asyncio.Event(), asyncio.Event(), asyncio.Event()
        loop = loop_of(steps, "held", wake)
        task = asyncio.create_task(loop.run(stop, abort if with_abort else None))
        await steps.until(1)
        (abort if with_abort else stop).set()
        await asyncio.wait_for(task, WAIT)
        assert steps.ended == ["cancelled"]
        assert steps.after == []
