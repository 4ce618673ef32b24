"""Held accounts, outages and cancels in the worker, against the simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from otp_bot.sim.app import Simulator
from otp_bot.sim.script import Fault, Script
from otp_bot.solve.drafts import State
from otp_bot.solve.hold import Verdict
from tests.test_solver import ACCOUNT, API_KEY, AUTHSERV, WAIT, Harness

# Probes and re-sends in tests: tenths of seconds instead of minutes.
FAST = {
    "hold_probe_min": 0.1,
    "hold_probe_max": 0.4,
    "outage_retry_min": 0.1,
    "outage_retry_max": 0.3,
}


@pytest.fixture
async def sim() -> AsyncIterator[tuple[Simulator, str]]:
    """A simulator that knows the account (its account read answers) on a free port."""
    simulator = Simulator(api_key=API_KEY, account_id=ACCOUNT, authserv_id=AUTHSERV)
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    yield simulator, str(server.make_url("/v1"))
    await server.close()


@pytest.fixture
async def make(sim: tuple[Simulator, str], tmp_path: Path) -> AsyncIterator[Callable[..., Harness]]:
    """Build a harness (FAST probes unless overridden); stopped afterwards."""
    made: list[Harness] = []

    def build(**settings: Any) -> Harness:
        harness = Harness(sim[0], sim[1], tmp_path, ACCOUNT, **{**FAST, **settings})
        made.append(harness)
        return harness

    yield build
    for harness in made:
        await harness.halt()
        await harness.client.close()
        harness.store.close()


async def poll(check: Callable[[], bool]) -> None:
    """Wait for a condition no draft transition announces (a simulator counter, a call in
    flight), polling it with a bounded deadline."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)  # polling another component's state, not a synchronisation


def publish_keys(h: Harness, draft_id: str) -> list[str | None]:
    return [
        r.idempotency_key
        for r in h.sim.requests
        if r.endpoint == "publish" and r.draft_id == draft_id
    ]


async def test_held_account_resumes_by_itself_when_a_probe_finds_it_usable(
    make: Callable[..., Harness],
) -> None:
    """Disconnected: the draft is held, a new one queues, probes back off; reconnected: both
    publish, the held one under a fresh key."""
    h = make()
    h.sim.script("D-1", Script(disconnect_account="errors/disconnected_account"))
    h.start()
    await h.worker.add_draft("D-1")
    held = await h.reaches("D-1", State.HELD)
    assert held.error == "errors/disconnected_account"
    queued = await h.worker.add_draft("D-2")
    assert queued.state is State.QUEUED
    # Probes answer CREDENTIALS: still held. The simulator counts a probe when it
    # arrives, the worker once it has read the answer: wait for both.
    await poll(lambda: h.sim.account.probes >= 2)
    await poll(lambda: h.worker.hold is not None and h.worker.hold.probes >= 2)
    assert h.worker.hold is not None
    assert h.worker.draft("D-2").state is State.QUEUED  # type: ignore[union-attr]
    with capture_logs() as logs:
        h.sim.account.reconnect()
        assert (await h.reaches("D-2", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert (await h.reaches("D-1", State.PUBLISHED)).error is None
    assert h.worker.hold is None
    resumed = [e for e in logs if e["event"] == "account_resumed"]
    assert [(e["via"], e["error"]) for e in resumed] == [("probe", "errors/disconnected_account")]
    first, again = publish_keys(h, "D-1")
    assert first != again  # the held draft publishes afresh: the old key replays the error
    events = [e["event"] for e in h.records.draft_history(ACCOUNT, "D-1")]
    assert events[:4] == ["added", "start_publish", "hold", "resume"]


async def test_probe_now_resumes_at_once(make: Callable[..., Harness]) -> None:
    """probe() (otp-bot resume) asks the account at once, whatever the backoff says."""
    h = make(hold_probe_min=600, hold_probe_max=900)
    h.sim.script("D-1", Script(disconnect_account="errors/expired_credentials"))
    h.start()
    await h.worker.add_draft("D-1")
    await h.reaches("D-1", State.HELD)
    assert await h.worker.probe() is Verdict.HELD
    assert h.worker.hold is not None
    assert h.worker.hold.probes == 1
    h.sim.account.reconnect()
    assert await h.worker.probe() is Verdict.USABLE
    assert h.worker.hold is None
    assert (await h.reaches("D-1", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert await h.worker.probe() is None  # not held: nothing to probe


async def test_without_the_account_read_the_held_draft_is_the_probe(
    make: Callable[..., Harness],
) -> None:
    """The account read answers 404: the oldest held draft is published again as the probe;
    while the account is disconnected it is held again, once reconnected it publishes."""
    h = make()
    h.sim.account.account_id = "acc_not_this_one"  # the read answers 404 resource_not_found
    h.sim.script("D-1", Script(disconnect_account="errors/disconnected_account"))
    h.start()
    await h.worker.add_draft("D-1")
    await h.worker.add_draft("D-2")
    await poll(lambda: len(publish_keys(h, "D-1")) >= 3)  # probing by publishing, held again
    assert h.worker.hold is not None
    assert publish_keys(h, "D-2") == []
    h.sim.account.reconnect()
    assert (await h.reaches("D-2", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert (await h.reaches("D-1", State.PUBLISHED)).state is State.PUBLISHED
    assert h.sim.account.probes == 0


async def test_a_restart_holds_the_account_again_and_probes_at_once(
    make: Callable[..., Harness],
) -> None:
    """A held draft in the store holds the account of a new worker, which probes it at once."""
    h = make(hold_probe_min=600, hold_probe_max=900)
    h.sim.script("D-1", Script(disconnect_account="errors/disconnected_account"))
    h.start()
    await h.worker.add_draft("D-1")
    await h.reaches("D-1", State.HELD)
    await h.halt()
    h.sim.account.reconnect()
    h.worker = h.new_worker()
    h.start()
    assert (await h.reaches("D-1", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert h.sim.account.probes == 1


async def test_outage_holds_the_draft_and_resends_the_same_call(
    make: Callable[..., Harness],
) -> None:
    """Past the client's retries a 503 outage moves the draft to retrying; the same publish
    (same key) is re-sent with backoff and publishes once the API is back."""
    h = make()
    h.sim.script("D-1", Script(checkpoints=()))
    h.sim.account.take_down("503")
    h.start()
    await h.worker.add_draft("D-1")
    stalled = await h.reaches("D-1", State.RETRYING)
    assert stalled.error == "errors/service_unavailable"
    assert h.worker.outage is not None
    await poll(lambda: len(publish_keys(h, "D-1")) >= 9)  # 3 attempts per send, re-sent
    h.sim.account.bring_up()
    assert (await h.reaches("D-1", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert len(set(publish_keys(h, "D-1"))) == 1
    assert h.worker.outage is None
    events = [e["event"] for e in h.records.draft_history(ACCOUNT, "D-1")]
    assert events == ["added", "start_publish", "stall", "got_published"]


async def test_a_stalled_submit_resends_its_input_after_a_restart(
    make: Callable[..., Harness],
) -> None:
    """A submit cut off by dropped connections keeps its input; a new worker re-sends it
    (same key, same code) and the draft publishes: no code burnt, none reused."""
    h = make(outage_retry_min=30, outage_retry_max=60)
    h.sim.script("D-1", Script(checkpoints=("OTP",)))
    h.start()
    h.auto_mail = False
    await h.worker.add_draft("D-1")
    await h.reaches("D-1", State.AWAITING_CODE)
    h.sim.account.take_down("drop")
    await h.deliver()
    stalled = await h.reaches("D-1", State.RETRYING)
    assert (stalled.checkpoint, stalled.input_form) == ("OTP", "code")
    await h.halt()
    h.sim.account.bring_up()
    h.worker = h.new_worker()
    h.start()
    assert (await h.reaches("D-1", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    submits = [r for r in h.sim.requests if r.endpoint == "checkpoint"]
    assert len({r.idempotency_key for r in submits}) == 1
    assert {r.body["input"] for r in submits} == {h.mails("D-1")[0].code}


async def test_outage_past_the_deadline_fails_with_the_last_error(
    make: Callable[..., Harness],
) -> None:
    """When the API stays down past OTP_BOT_DRAFT_DEADLINE the draft fails, saying why."""
    h = make(draft_deadline=0.5)
    h.sim.account.take_down("500")
    h.start()
    await h.worker.add_draft("D-1")
    failed = await h.reaches("D-1", State.FAILED)
    assert failed.error == "errors/unexpected_error"
    assert "OTP_BOT_DRAFT_DEADLINE" in (failed.error_detail or "")


async def test_cancel_stops_waiting_drafts_at_once(make: Callable[..., Harness]) -> None:
    """A queued and an awaiting draft are cancelled at once; the queue moves on."""
    h = make()
    h.auto_mail = False
    h.start()
    await h.worker.add_draft("D-wait")
    await h.reaches("D-wait", State.AWAITING_CODE)
    await h.worker.add_draft("D-queued")
    await h.worker.add_draft("D-next")
    cancelled = h.worker.cancel("D-queued")
    assert cancelled is not None
    assert (cancelled.state, cancelled.error_detail) == (
        State.CANCELLED,
        "cancelled by the operator",
    )
    assert h.worker.cancel("D-wait").state is State.CANCELLED  # type: ignore[union-attr]
    await h.reaches("D-next", State.AWAITING_CODE)
    assert h.worker.cancel("D-none") is None
    done = h.worker.cancel("D-wait")
    assert done is not None
    assert done.state is State.CANCELLED  # cancelling twice changes nothing
    assert publish_keys(h, "D-queued") == []


async def test_cancel_of_a_draft_mid_call_waits_for_the_answer(
    make: Callable[..., Harness],
) -> None:
    """A draft whose publish is in flight finishes that step (its checkpoint is committed),
    then is cancelled; its e-mail is never used."""
    h = make()
    h.auto_mail = False
    h.sim.script("D-slow", Script(checkpoints=("OTP",), slow_answers=1, slow_delay=0.5))
    h.start()
    await h.worker.add_draft("D-slow")
    await poll(lambda: h.worker.in_call == "D-slow")
    pending = h.worker.cancel("D-slow")
    assert pending is not None
    assert pending.state is State.PUBLISHING
    assert h.worker.cancel_pending("D-slow")
    cancelled = await h.reaches("D-slow", State.CANCELLED)
    events = [e["event"] for e in h.records.draft_history(ACCOUNT, "D-slow")]
    assert events == ["added", "start_publish", "got_checkpoint", "cancel"]
    assert cancelled.checkpoint is None
    assert not h.worker.cancel_pending("D-slow")


async def test_bulk_retry_requeues_only_the_chosen_failures(make: Callable[..., Harness]) -> None:
    """retry_failed(error) queues again the drafts failed with that type, and no others."""
    h = make()
    h.sim.script("D-gone", Script(faults=(Fault("errors/resource_not_found"),)))
    h.sim.script("D-bad", Script(faults=(Fault(body="<html>", status=200),)))
    h.start()
    await h.worker.add_draft("D-gone")
    await h.worker.add_draft("D-bad")
    await h.reaches("D-bad", State.FAILED)
    retried = h.worker.retry_failed("errors/resource_not_found")
    assert [(d.draft_id, d.state) for d in retried] == [("D-gone", State.QUEUED)]
    assert (await h.reaches("D-gone", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert h.worker.draft("D-bad").state is State.FAILED  # type: ignore[union-attr]
    assert [d.draft_id for d in h.worker.retry_failed()] == ["D-bad"]
    assert h.worker.retry_failed() == []


async def test_retry_while_held_queues_the_draft(make: Callable[..., Harness]) -> None:
    """A failed draft retried while the account is held waits in the queue, not failed."""
    h = make(hold_probe_min=600, hold_probe_max=900)
    h.sim.script("D-gone", Script(faults=(Fault("errors/resource_not_found"),)))
    h.sim.script("D-1", Script(disconnect_account="errors/disconnected_account"))
    h.start()
    await h.worker.add_draft("D-gone")
    await h.reaches("D-gone", State.FAILED)
    await h.worker.add_draft("D-1")
    await h.reaches("D-1", State.HELD)
    [again] = h.worker.retry_failed()
    assert (again.draft_id, again.state) == ("D-gone", State.QUEUED)
    h.sim.account.reconnect()
    await h.worker.probe()
    for draft_id in ("D-1", "D-gone"):
        assert (await h.reaches(draft_id, State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
