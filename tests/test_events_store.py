"""The event table as a feed (cursors, SSE positions), retention, status filters, the webhook
client's bounds and the new settings' checks: no Dovecot needed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from otp_bot.config import load_settings
from otp_bot.control.events import MAX_STREAMS
from otp_bot.control.server import ControlServer
from otp_bot.daemon.feed import EventFeed
from otp_bot.daemon.metrics import Metrics
from otp_bot.errors import ConfigError
from otp_bot.solve import drafts as d
from otp_bot.solve.drafts import State
from otp_bot.store.db import Store
from otp_bot.store.drafts import DraftStore
from otp_bot.store.events import EventStore
from otp_bot.webhook.sender import MAX_RESPONSE, DeliveryFailed, WebhookClient

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ACC = "acc_events"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "otp-bot.sqlite3")
    yield opened
    opened.close()


def finish(
    records: DraftStore, draft_id: str, at: datetime, event: d.Event, account: str = ACC
) -> d.Draft:
    """A draft added at ``at`` and moved once by ``event`` (history: added, then it)."""
    draft = records.insert_draft(d.new_draft(account, draft_id, at))
    moved = d.advance(draft, event, at)
    records.save_transition(draft, moved, event)
    return moved


def test_prune_drops_only_old_finished_drafts_and_their_events(store: Store) -> None:
    """Retention: a finished draft older than the bound goes with its history; a recent one,
    or one still under way however old, stays."""
    records, events = DraftStore(store), EventStore(store)
    finish(records, "old-failed", T0, d.Fail("errors/resource_not_found"))
    finish(records, "old-cancelled", T0, d.Cancel())
    finish(records, "old-queued-then-held", T0, d.StartPublish("k"))  # publishing: under way
    finish(records, "new-failed", T0 + timedelta(days=100), d.Fail("errors/x"))
    before = T0 + timedelta(days=10)
    assert events.prune(ACC, {s.value for s in d.TERMINAL}, before) == (2, 4)
    left = {draft.draft_id for draft in records.load_drafts(ACC)}
    assert left == {"old-queued-then-held", "new-failed"}
    assert {e["draft_id"] for e in events.events_after(0)} == left
    assert events.prune("acc_other", {s.value for s in d.TERMINAL}, T0 + timedelta(days=999)) == (
        0,
        0,
    )


def test_find_drafts_filters_by_state_time_and_error(store: Store) -> None:
    """status --state/--since and retry --error select in SQL."""
    records = DraftStore(store)
    finish(records, "a", T0, d.Fail("errors/expired_credentials"))
    finish(records, "b", T0 + timedelta(hours=2), d.Fail("errors/resource_not_found"))
    finish(records, "c", T0 + timedelta(hours=3), d.Cancel())
    ids = lambda found: [x.draft_id for x in found]  # noqa: E731
    assert ids(records.find_drafts(ACC, states={"failed"})) == ["a", "b"]
    assert ids(records.find_drafts(ACC, since=T0 + timedelta(hours=1))) == ["b", "c"]
    assert ids(records.find_drafts(ACC, states={"failed"}, error="errors/expired_credentials")) == [
        "a"
    ]
    assert records.find_drafts("acc_other") == []


def test_event_cursor_and_columns(store: Store) -> None:
    """Events carry job_id and error; a cursor keeps a reader's place across restarts."""
    records, events = DraftStore(store), EventStore(store)
    finish(records, "x", T0, d.Fail("errors/resource_not_found", "gone"))
    rows = events.events_after(0)
    assert [(r["event"], r["to_state"], r["error"]) for r in rows] == [
        ("added", "queued", None),
        ("fail", "failed", "errors/resource_not_found"),
    ]
    assert events.cursor("webhook:x") is None
    events.set_cursor("webhook:x", rows[0]["id"], T0)
    assert events.events_after(events.cursor("webhook:x") or 0) == rows[1:]
    assert events.last_event_id() == rows[-1]["id"]


async def test_feed_positions_resume_and_refuse_strangers(store: Store, tmp_path: Path) -> None:
    """SSE positions: one id per database; a resumed reader gets what it missed; a bad
    Last-Event-ID is refused; a bump wakes a waiting stream."""
    other = Store(tmp_path / "other" / "otp-bot.sqlite3")
    try:
        feed = EventFeed([(EventStore(store), [ACC]), (EventStore(other), ["acc_2"])])
        start = feed.start(None)
        assert start == "0.0"
        finish(DraftStore(store), "one", T0, d.Cancel())
        finish(DraftStore(other), "two", T0, d.Cancel(), account="acc_2")
        read = await feed.read(start, None)
        assert [e["draft_id"] for e, _ in read] == ["one", "one", "two", "two"]
        assert read[-1][1] == "2.2"
        assert [e["draft_id"] for e, _ in await feed.read(read[1][1], None)] == ["two", "two"]
        only = await feed.read("0.0", "acc_2")
        assert [e for e, _ in only] == [e for e, _ in read[2:]]
        assert only[-1][1] == "0.2"  # the other database's place is kept as given
        for bad in ("1", "a.b", "-1.0", "1.2.3", "9" * 30 + ".0"):
            with pytest.raises(ValueError, match=r"."):
                feed.start(bad)
        version = feed.version
        waiting = asyncio.create_task(feed.wait(version, 5))
        feed.bump()
        assert await waiting
        assert not await feed.wait(feed.version, 0.01)
    finally:
        other.close()


async def serve(handler: web.Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


async def test_webhook_client_is_bounded() -> None:
    """A slow receiver is a failed delivery after the timeout; a huge answer is read only up to
    MAX_RESPONSE; a redirect is a failure, not followed; a refused connection too."""
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.Response:
        await release.wait()  # never answers before the client gives up
        return web.Response()

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * MAX_RESPONSE)
        return response

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    for handler, expected in ((slow, 0), (redirect, 302)):
        runner, url = await serve(handler)
        async with WebhookClient(url, "s3cret-webhook-key", timeout=0.3) as client:
            with pytest.raises(DeliveryFailed) as caught:
                await client.deliver(1, b"{}")
        assert caught.value.status == expected
        assert "s3cret" not in str(caught.value)
        release.set()
        await runner.cleanup()
    runner, url = await serve(huge)
    async with WebhookClient(url, "k", timeout=5) as client:
        assert await client.deliver(2, b"{}") == 200
    await runner.cleanup()
    async with WebhookClient("http://127.0.0.1:9/hook", "k", timeout=1) as client:
        with pytest.raises(DeliveryFailed):
            await client.deliver(3, b"{}")


def test_webhook_and_backoff_settings_are_checked(tmp_path: Path) -> None:
    """A webhook URL without its secret, or a minimum above its maximum, stops the start."""
    base = tmp_path / "a.env"
    base.write_text(
        "OTP_BOT_ACCOUNT_ID=acc\nOTP_BOT_API_KEY=pp_test_x\nOTP_BOT_IMAP_HOST=imap.example.com\n"
        "OTP_BOT_IMAP_USER=u\nOTP_BOT_IMAP_PASSWORD=p\n"
    )
    assert load_settings(base).webhook_url is None
    with pytest.raises(ConfigError, match="OTP_BOT_WEBHOOK_SECRET"):
        load_settings(base, webhook_url="https://hooks.example.com/x")
    with pytest.raises(ConfigError, match="OTP_BOT_HOLD_PROBE_MIN"):
        load_settings(base, hold_probe_min=100, hold_probe_max=10)
    ok = load_settings(base, webhook_url="https://u:pw-secret-1234@hooks.example.com/x",
                       webhook_secret="whsec_abcdefgh")  # fmt: skip
    assert "whsec_abcdefgh" in ok.secrets()
    assert "pw-secret-1234" in ok.secrets()
    assert "pw-secret-1234" not in str(ok.shown())


def test_draft_states_reach_every_state_in_store(store: Store) -> None:
    """Every state round-trips through the store (the new ones included)."""
    records = DraftStore(store)
    draft = records.insert_draft(d.new_draft(ACC, "s", T0))
    for state in State:
        moved = replace(draft, state=state, updated_at=draft.updated_at + timedelta(seconds=1))
        records.save_transition(draft, moved, d.Cancel())
        assert records.load_drafts(ACC, "s")[0].state is state
        draft = moved


async def test_event_stream_resumes_refuses_and_is_bounded(store: Store) -> None:
    """GET /events: Last-Event-ID resumes after that event, a foreign id is a 400, and the
    stream past MAX_STREAMS is a 503."""
    finish(DraftStore(store), "e1", T0, d.Cancel())
    feed = EventFeed([(EventStore(store), [ACC])])
    server = ControlServer("127.0.0.1:1", [], Metrics(), events=feed)
    async with TestClient(TestServer(server.app, host="127.0.0.1")) as http:
        reply = await http.get("/events", headers={"Last-Event-ID": "1"})
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        lines = [(await reply.content.readline()).decode() for _ in range(5)]
        assert lines[:2] == ["retry: 3000\n", "\n"]
        assert lines[2:4] == ["id: 2\n", "event: draft\n"]
        assert '"event": "cancel"' in lines[4]
        reply.close()
        assert (await http.get("/events", headers={"Last-Event-ID": "1.2"})).status == 400
        assert (await http.get("/events?after=" + "9" * 300)).status == 400
        streams = [await http.get("/events") for _ in range(MAX_STREAMS)]
        for stream in streams:
            assert (await stream.content.readline()) == b"retry: 3000\n"
        assert (await http.get("/events")).status == 503
        for stream in streams:
            stream.close()
