"""Events out and operator controls, in the running daemon: Dovecot, the simulator, the
control API over HTTP, a webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from otp_bot.webhook.sign import (
    EVENT_ID_HEADER,
    EVENT_TYPE,
    SIGNATURE_HEADER,
    event_body,
    signature_header,
    verify,
)
from tests import dovecot as dc
from tests.inprocess import running

SECRET = "whsec_test_never_logged_0123456789"
# Every event of a draft published after one OTP checkpoint, in order.
OTP_PATH = ["added", "start_publish", "got_checkpoint", "submit", "got_published"]


# --- the signature, pure -----------------------------------------------------------


def test_signature_verifies_and_refuses_tampering() -> None:
    """The header signs timestamp and body: a wrong secret, body or old stamp is refused."""
    body = event_body({"id": 7, "draft_id": "d", "to_state": "published"})
    assert json.loads(body)["type"] == EVENT_TYPE
    header = signature_header(SECRET.encode(), 1_700_000_000, body)
    assert verify(SECRET.encode(), header, body, now=1_700_000_010)
    assert not verify(b"another secret", header, body, now=1_700_000_010)
    assert not verify(SECRET.encode(), header, body + b" ", now=1_700_000_010)
    assert not verify(SECRET.encode(), header, body, now=1_700_000_000 + 301)
    assert not verify(SECRET.encode(), "t=abc,v1=00", body, now=1_700_000_000)
    assert not verify(SECRET.encode(), "", body, now=1_700_000_000)


def test_documented_verification_example_agrees() -> None:
    """The verification function printed in docs/operations-controls.md accepts our header."""
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "operations-controls.md").read_text()
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(code, scope)  # noqa: S102 - our own documentation's example
    body = event_body({"id": 1})
    header = signature_header(SECRET.encode(), int(time.time()), body)
    assert scope["verified"](SECRET.encode(), body, header)
    assert not scope["verified"](SECRET.encode(), body + b"x", header)


# --- a receiver ----------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook endpoint on loopback that answers ``refuse`` for the first N calls."""

    refuse: int = 0
    status: int = 503
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        self.paths.append(request.path)
        self.arrived.set()
        if self.refuse > 0:
            self.refuse -= 1
            if self.status in (301, 302, 307):
                raise web.HTTPFound("/elsewhere")
            return web.Response(status=self.status)
        return web.Response(text="ok")

    def events(self) -> list[dict[str, Any]]:
        """Every delivered event (verified), without the duplicates at-least-once allows."""
        seen: dict[int, dict[str, Any]] = {}
        for headers, body in self.calls:
            assert verify(SECRET.encode(), headers[SIGNATURE_HEADER], body, now=time.time())
            event = json.loads(body)
            assert str(event["id"]) == headers[EVENT_ID_HEADER]
            seen[event["id"]] = event
        return [seen[key] for key in sorted(seen)]

    async def until(self, what: str, check: Any, within: float = 20) -> None:
        """Wait for a condition on what arrived (woken by each call, bounded)."""
        async with asyncio.timeout(within):
            while not check(self):
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    app.router.add_post("/elsewhere", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield hook, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


def webhook(url: str, **more: Any) -> dict[str, Any]:
    return {"webhook_url": url, "webhook_secret": SECRET, "webhook_retry_max": 0.2, **more}


def path_of(events: list[dict[str, Any]], draft_id: str) -> list[str]:
    return [e["event"] for e in events if e["draft_id"] == draft_id]


# --- tests ----------------------------------------------------------------------------


@pytest.mark.dovecot
async def test_webhook_and_sse_carry_every_state_change(
    dovecot: dc.Dovecot, receiver: tuple[Receiver, str]
) -> None:
    """A draft solved from Dovecot: the webhook gets each change once, signed, in order, the
    first two refused and retried; GET /events streams the same events."""
    hook, url = receiver
    hook.refuse = 2
    async with running(dovecot, {"acc_hook": webhook(url)}) as daemon:
        stream = asyncio.create_task(read_sse(daemon.base_url, "?after=0", 5, daemon.headers()))
        await daemon.request("POST", "/drafts", {"draft_id": "d-hook"})
        await daemon.wait_state("d-hook", "published")
        await hook.until("5 events", lambda h: len(h.events()) == len(OTP_PATH))
        streamed = await asyncio.wait_for(stream, 20)
    delivered = hook.events()
    assert path_of(delivered, "d-hook") == OTP_PATH
    assert [(e["from_state"], e["to_state"]) for e in delivered][-1] == ("submitting", "published")
    assert delivered[-1]["job_id"]
    assert len(hook.calls) == len(OTP_PATH) + 2  # the first event three times
    assert [event for _id, event in streamed] == [
        {k: v for k, v in e.items() if k != "type"} for e in delivered
    ]
    assert [int(i) for i, _ in streamed] == [e["id"] for e in delivered]


@pytest.mark.dovecot
async def test_a_redirect_is_a_failed_delivery(
    dovecot: dc.Dovecot, receiver: tuple[Receiver, str]
) -> None:
    """A 302 is not followed: the event is sent again to the configured URL until a 2xx."""
    hook, url = receiver
    hook.refuse, hook.status = 1, 302
    async with running(dovecot, {"acc_redir": webhook(url)}) as daemon:
        await daemon.request("POST", "/drafts", {"draft_id": "d-redir-direct"})
        await hook.until("an event delivered", lambda h: len(h.calls) >= 2)
    assert set(hook.paths) == {"/hook"}  # never /elsewhere
    assert hook.events()[0]["event"] == "added"


async def read_sse(
    base_url: str, query: str, count: int, headers: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """The first ``count`` messages of GET /events (id, data), with the daemon's token."""
    out: list[tuple[str, dict[str, Any]]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.get(base_url + "/events" + query, headers=headers) as reply,
    ):
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        message: dict[str, str] = {}
        async for raw in reply.content:
            line = raw.decode().rstrip("\n")
            if line:
                key, _, value = line.partition(": ")
                message[key] = value
                continue
            if "data" in message:
                out.append((message["id"], json.loads(message["data"])))
                if len(out) == count:
                    return out
            message = {}
    return out


@pytest.mark.dovecot
async def test_operator_controls_over_the_control_api(dovecot: dc.Dovecot) -> None:
    """Cancel, bulk retry, resume and the status filters, as the CLI calls them."""
    async with running(dovecot, {"acc_ops": {}}) as daemon:
        await daemon.request("POST", "/drafts", {"draft_id": "d-ops-notfound-direct"})
        await daemon.request("POST", "/drafts", {"draft_id": "d-ops-nomail"})
        failed = await daemon.wait_state("d-ops-notfound-direct", "failed")
        assert failed["error"] == "errors/resource_not_found"
        await daemon.wait_state("d-ops-nomail", "awaiting_code")
        await daemon.request("POST", "/drafts", {"draft_id": "d-ops-queued"})
        status, listed = await daemon.request("GET", "/drafts?state=queued,failed")
        assert (status, {d["draft_id"] for d in listed}) == (
            200,
            {"d-ops-notfound-direct", "d-ops-queued"},
        )
        future = "2999-01-01T00:00:00Z"
        assert (await daemon.request("GET", f"/drafts?since={future}"))[1] == []
        assert (await daemon.request("GET", "/drafts?state=lost"))[0] == 400
        status, cancelled = await daemon.request("POST", "/drafts/d-ops-queued/cancel", {})
        assert (status, cancelled["state"], cancelled["cancel"]) == (200, "cancelled", "cancelled")
        status, again = await daemon.request("POST", "/drafts/d-ops-queued/cancel", {})
        assert (status, again["cancel"]) == (409, "finished")
        assert (await daemon.request("POST", "/drafts/nope/cancel", {}))[0] == 404
        status, cancelled = await daemon.request("POST", "/drafts/d-ops-nomail/cancel")
        assert (status, cancelled["state"]) == (200, "cancelled")
        assert (await daemon.request("POST", "/drafts/retry", {}))[0] == 400
        body = {"failed": True, "error": "errors/resource_not_found"}
        status, retried = await daemon.request("POST", "/drafts/retry", body)
        assert (status, retried["count"]) == (200, 1)
        assert retried["retried"][0]["state"] == "queued"
        status, resumed = await daemon.request("POST", "/resume", {})
        assert (status, resumed["accounts"][0]["probe"]) == (200, None)  # not held
        assert (await daemon.request("POST", "/accounts/acc_other/resume"))[0] == 404
