"""A 30-minute API outage, compressed 600-fold, against Dovecot and the simulator: every
draft ends published, none failed; and a held account resumed by a probe in the daemon."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from otp_bot.sim.script import Script
from tests import dovecot as dc
from tests.inprocess import Running, running

pytestmark = pytest.mark.dovecot

# Production timings divided by this: a 30-minute outage lasts 3 s.
SCALE = 600
OUTAGE_S = 30 * 60 / SCALE
COMPRESSED = {
    "api_timeout": 0.5,  # a dropped connection is noticed at once; a stalled one in 0.5 s
    "api_retry_attempts": 2,
    "api_retry_max_time": 180 / SCALE,
    "outage_retry_min": 30 / SCALE,
    "outage_retry_max": 300 / SCALE,
    "draft_deadline": 86400 / SCALE,
    "hold_probe_min": 60 / SCALE,
    "hold_probe_max": 900 / SCALE,
}


async def health(daemon: Running) -> dict[str, Any]:
    return dict((await daemon.request("GET", "/healthz"))[1]["accounts"][0])


async def test_compressed_outage_ends_with_every_draft_published(dovecot: dc.Dovecot) -> None:
    """Dropped connections then 503s for '30 minutes': a submit in flight and the drafts posted
    meanwhile wait (retrying, queued), /healthz says the API is unreachable, and afterwards
    every draft is published, none failed, the stalled submit re-sent under its one key."""
    async with running(dovecot, {"acc_outage": dict(COMPRESSED)}) as daemon:
        sim = daemon.sims["acc_outage"]
        await daemon.request("POST", "/drafts", {"draft_id": "d-before"})
        await daemon.wait_state("d-before", "published")
        await daemon.request("POST", "/drafts", {"draft_id": "d-mid"})
        await daemon.wait_state("d-mid", "awaiting_code", "published")
        sim.account.take_down("drop", seconds=OUTAGE_S / 2)
        later = asyncio.get_running_loop().call_later(
            OUTAGE_S / 2, lambda: sim.account.take_down("503", seconds=OUTAGE_S / 2)
        )
        meanwhile = [f"d-during-{n}" for n in range(3)]
        for draft_id in meanwhile:
            status, draft = await daemon.request("POST", "/drafts", {"draft_id": draft_id})
            assert (status, draft["state"]) == (202, "queued")
        await daemon.wait_state("d-mid", "retrying", "published", within=10)
        down = await health(daemon)
        assert (down["api"], down["healthy"]) == ("unreachable", False)
        for draft_id in ["d-mid", *meanwhile]:
            assert (await daemon.wait_state(draft_id, "published", "failed", within=30))[
                "state"
            ] == "published", draft_id
        later.cancel()
        status, failed = await daemon.request("GET", "/drafts?state=failed")
        assert (status, failed) == (200, [])
        assert (await health(daemon))["api"] == "ok"
        history = [e["event"] for e in await events_of(daemon, "d-mid")]
        assert "stall" in history, history
        submits = [r for r in sim.requests if r.draft_id == "d-mid" and r.endpoint == "checkpoint"]
        assert len({r.idempotency_key for r in submits}) == 1
        assert len({r.body["input"] for r in submits}) == 1
        assert any(r.outcome in ("dropped", "outage") for r in sim.requests)


async def events_of(daemon: Running, draft_id: str) -> list[dict[str, Any]]:
    """The published draft's history as GET /events replays it (?after=0), up to publication."""
    found: list[dict[str, Any]] = []
    url = daemon.base_url + "/events?after=0"
    async with (
        aiohttp.ClientSession(headers=daemon.headers()) as http,  # the daemon's own token
        http.get(url) as reply,
        asyncio.timeout(10),
    ):
        async for raw in reply.content:
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["draft_id"] == draft_id:
                found.append(event)
                if event["to_state"] == "published":
                    return found
    return found


async def test_held_account_resumed_by_a_probe_in_the_daemon(dovecot: dc.Dovecot) -> None:
    """A disconnected account: held, /healthz and /metrics say so, drafts queue; reconnected,
    a probe resumes it and every draft publishes."""
    async with running(dovecot, {"acc_held": dict(COMPRESSED)}) as daemon:
        sim = daemon.sims["acc_held"]
        sim.script("d-held", Script(disconnect_account="errors/disconnected_account"))
        await daemon.request("POST", "/drafts", {"draft_id": "d-held"})
        await daemon.wait_state("d-held", "held")
        status, queued = await daemon.request("POST", "/drafts", {"draft_id": "d-queued"})
        assert (status, queued["state"]) == (202, "queued")
        held = await health(daemon)
        assert held["held"]["error"] == "errors/disconnected_account"
        metrics = (await daemon.request("GET", "/metrics"))[1]
        assert 'otp_bot_account_held{account="acc_held"} 1.0' in metrics
        sim.account.reconnect()
        for draft_id in ("d-held", "d-queued"):
            assert (await daemon.wait_state(draft_id, "published", "failed"))[
                "state"
            ] == "published"
        assert sim.account.probes >= 1
        assert (await health(daemon))["held"] is None
