"""Webhook delivery across `kill -9` of the daemon: no event lost, each draft's in order."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from otp_bot.webhook.sign import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from tests.harness import Stack, running_stack, wait_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "bot@example.test"
ACCOUNT = "acc_webhook"
SECRET = "whsec_kill_test_0123456789abcdef"
# A slow receiver: each delivery takes this long, so a kill lands mid-delivery.
SLOW_S = 0.3


class Hook(BaseHTTPRequestHandler):
    """Records every POST; answers 503 while ``refusing``, else 200 after ``delay``."""

    refusing = True
    delay = 0.0
    received: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 - shared by the server's threads
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Hook.lock:
            Hook.received.append((dict(self.headers), body))
        if Hook.refusing:
            self.send_response(503)
        else:
            time.sleep(Hook.delay)  # the receiver's own slowness (the fault injected)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received, Hook.refusing, Hook.delay = [], True, 0.0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def delivered() -> dict[int, dict[str, Any]]:
    """Every event the receiver accepted or refused, verified, by id (duplicates merged)."""
    with Hook.lock:
        calls = list(Hook.received)
    out = {}
    for headers, body in calls:
        assert verify(SECRET.encode(), headers[SIGNATURE_HEADER], body, now=time.time())
        event = json.loads(body)
        assert str(event["id"]) == headers[EVENT_ID_HEADER]
        out[event["id"]] = event
    return out


def stored_events(stack: Stack) -> list[tuple[int, str, str]]:
    """(id, draft_id, event) of every row of the daemon's event table."""
    db = sqlite3.connect(stack.accounts[ACCOUNT].state_dir / "otp-bot.sqlite3")
    try:
        return list(db.execute("SELECT id, draft_id, event FROM draft_event ORDER BY id"))
    finally:
        db.close()


def test_webhook_events_survive_kill_9(hook: str) -> None:
    """Killed while the receiver refuses, and again mid-delivery: after the last restart the
    receiver has every event of the event table, each draft's in order."""
    with running_stack([USER]) as stack:
        stack.add_account(
            ACCOUNT,
            USER,
            OTP_BOT_WEBHOOK_URL=hook,
            OTP_BOT_WEBHOOK_SECRET=SECRET,
            OTP_BOT_WEBHOOK_RETRY_MAX="0.5",
        )
        first = stack.daemon(ACCOUNT)
        first.start_ready()
        drafts = [f"kill-{n}-direct" for n in range(3)]
        for draft_id in drafts:
            first.client.publish(draft_id)
        for draft_id in drafts:
            first.wait_state(draft_id, "published")
        wait_until("refused deliveries", lambda: len(Hook.received) >= 2, 20, first.tail())
        first.kill()  # SIGKILL: no shutdown at all

        Hook.refusing, Hook.delay = False, SLOW_S
        second = stack.daemon(ACCOUNT)
        second.start_ready()
        wait_until("a delivery after restart", lambda: len(delivered()) >= 3, 20, second.tail())
        second.kill()  # mid-delivery: the receiver is slow, the cursor lags

        Hook.delay = 0.0
        third = stack.daemon(ACCOUNT)
        third.start_ready()
        third.client.publish("kill-after-direct")
        third.wait_state("kill-after-direct", "published")
        table = stored_events(stack)
        wanted = {event_id for event_id, _draft, _event in table}
        wait_until("every event", lambda: wanted <= set(delivered()), 30, third.tail())
        got = delivered()
        with Hook.lock:
            arrival = [json.loads(body)["id"] for _headers, body in Hook.received]
        first_seen = list(dict.fromkeys(arrival))
        assert first_seen == sorted(first_seen)  # in order, whatever was sent again
        for draft_id in [*drafts, "kill-after-direct"]:
            mine = [(i, e) for i, d, e in table if d == draft_id]
            assert [got[i]["event"] for i, _ in mine] == [e for _, e in mine]
            assert [e for _, e in mine] == ["added", "start_publish", "got_published"]
