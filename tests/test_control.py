"""The control API, served by the real service against Dovecot and the simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otp_bot.control.server import ControlServer
from otp_bot.daemon import service
from otp_bot.daemon.metrics import Metrics
from otp_bot.errors import ConfigError
from otp_bot.sim.script import Fault, Script
from tests import dovecot as dc
from tests.inprocess import running, settings_for

pytestmark = pytest.mark.dovecot


async def test_post_then_get_a_draft(dovecot: dc.Dovecot) -> None:
    """POST /drafts queues a draft (202), is idempotent (200), and GET shows it move on."""
    async with running(dovecot) as daemon:
        status, draft = await daemon.request("POST", "/drafts", {"draft_id": "d-1"})
        assert status == 202
        assert draft["draft_id"] == "d-1"
        assert draft["state"] in ("queued", "publishing", "awaiting_code")
        for key in ("job_id", "job_state", "checkpoint", "error", "updated_at", "account_id"):
            assert key in draft
        status, again = await daemon.request("POST", "/drafts", {"draft_id": "d-1"})
        assert status == 200
        assert again["created_at"] == draft["created_at"]
        published = await daemon.wait_state("d-1", "published")
        assert published["job_id"]
        status, listed = await daemon.request("GET", "/drafts")
        assert status == 200
        assert [d["draft_id"] for d in listed] == ["d-1"]
        status, filtered = await daemon.request("GET", "/drafts?state=failed")
        assert (status, filtered) == (200, [])


async def test_unknown_draft_is_404(dovecot: dc.Dovecot) -> None:
    """GET /drafts/{id} of a draft never posted answers 404 with a JSON error."""
    async with running(dovecot) as daemon:
        status, body = await daemon.request("GET", "/drafts/nope")
        assert status == 404
        assert "nope" in body["error"]


BAD_BODIES = [
    pytest.param([1, 2], "JSON object", id="not-an-object"),
    pytest.param({}, "draft_id", id="no-draft-id"),
    pytest.param({"draft_id": ""}, "draft_id", id="empty-draft-id"),
    pytest.param({"draft_id": 7}, "draft_id", id="numeric-draft-id"),
    pytest.param({"draft_id": "d", "checkpoint": "SMS"}, "checkpoint", id="bad-checkpoint"),
    pytest.param({"draft_id": "d", "colour": "red"}, "unknown fields", id="unknown-field"),
    pytest.param({"draft_id": "d", "options": {"speed": 1}}, "speed", id="unknown-option"),
    pytest.param({"draft_id": "d", "options": []}, "options", id="options-not-object"),
    pytest.param({"draft_id": " d"}, "draft_id", id="draft-id-with-space"),
    pytest.param({"draft_id": "d", "retry": "yes"}, "retry", id="retry-not-bool"),
    pytest.param({"draft_id": "d", "retry": 1}, "retry", id="retry-number"),
]


@pytest.mark.parametrize(("body", "says"), BAD_BODIES)
async def test_bad_post_bodies_are_400(dovecot: dc.Dovecot, body: Any, says: str) -> None:
    """A malformed POST /drafts is refused with 400 and a message naming the problem."""
    async with running(dovecot) as daemon:
        status, answer = await daemon.request("POST", "/drafts", body)
        assert status == 400
        assert says in answer["error"]
        assert daemon.sims["acc_inproc"].requests == []


async def test_publish_options_reach_postpress(dovecot: dc.Dovecot) -> None:
    """Publish options given with the draft are sent with its publish call."""
    async with running(dovecot) as daemon:
        body = {"draft_id": "d-opt", "options": {"mode": "PROMOTED"}, "service": "RECRUITER"}
        status, _draft = await daemon.request("POST", "/drafts", body)
        assert status == 202
        await daemon.wait_state("d-opt", "published")
        [publish] = [r for r in daemon.sims["acc_inproc"].requests if r.endpoint == "publish"]
        assert publish.body["mode"] == "PROMOTED"
        assert publish.body["service"] == "RECRUITER"


async def test_retry_requeues_only_a_failed_draft(dovecot: dc.Dovecot) -> None:
    """ "retry": true re-queues a failed draft (202) to published; otherwise a no-op (200)."""
    retry = {"draft_id": "d-re", "retry": True}
    not_found = Script(faults=(Fault("errors/resource_not_found"),))
    async with running(dovecot) as daemon:
        daemon.sims["acc_inproc"].script("d-re", not_found)
        assert (await daemon.request("POST", "/drafts", {"draft_id": "d-re"}))[0] == 202
        failed = await daemon.wait_state("d-re", "failed")
        assert await daemon.request("POST", "/drafts", {"draft_id": "d-re"}) == (200, failed)
        status, queued = await daemon.request("POST", "/drafts", retry)
        assert (status, queued["error"], queued["republishes"]) == (202, None, 0)
        assert queued["state"] in ("queued", "publishing", "awaiting_code")
        published = await daemon.wait_state("d-re", "published")
        assert published["created_at"] == failed["created_at"]
        assert await daemon.request("POST", "/drafts", retry) == (200, published)


async def test_registered_checkpoint_waits_without_publishing(dovecot: dc.Dovecot) -> None:
    """ "checkpoint": "OTP" registers someone else's checkpoint: no publish call is made."""
    async with running(dovecot) as daemon:
        body = {"draft_id": "d-reg", "checkpoint": "OTP"}
        status, draft = await daemon.request("POST", "/drafts", body)
        assert status == 202
        assert (draft["state"], draft["checkpoint"]) == ("awaiting_code", "OTP")
        assert daemon.sims["acc_inproc"].requests == []


ENDPOINTS = [("GET", "/drafts"), ("GET", "/drafts/x"), ("POST", "/drafts"), ("GET", "/healthz"),
             ("GET", "/metrics")]  # fmt: skip


async def test_bearer_token_guards_every_endpoint(dovecot: dc.Dovecot) -> None:
    """With OTP_BOT_CONTROL_TOKEN set, no endpoint answers without the right bearer token."""
    token = "control-token-for-tests-0123456789"
    accounts: dict[str, dict[str, Any]] = {"acc_inproc": {"control_token": token}}
    async with running(dovecot, accounts) as daemon:
        for method, path in ENDPOINTS:
            for supplied in (None, "wrong-token", token.upper()):
                daemon.token = supplied
                status, body = await daemon.request(method, path, {"draft_id": "d-auth"})
                assert status == 401, (method, path, supplied)
                assert "bearer" in body["error"]
        daemon.token = token
        status, _ = await daemon.request("POST", "/drafts", {"draft_id": "d-auth"})
        assert status == 202
        for method, path in ENDPOINTS:
            status, _ = await daemon.request(method, path, {"draft_id": "d-auth"})
            assert status in (200, 404), (method, path)


def test_non_loopback_address_needs_a_token() -> None:
    """Binding the control API beyond loopback without a token is refused at startup."""
    with pytest.raises(ConfigError, match="OTP_BOT_CONTROL_TOKEN"):
        ControlServer("0.0.0.0:8787", [], Metrics())
    ControlServer("0.0.0.0:8787", [], Metrics(), token="t" * 32)
    ControlServer("[::1]:8787", [], Metrics())


async def test_service_refuses_non_loopback_without_token(dovecot: dc.Dovecot) -> None:
    """service.run stops before connecting anything when the control API would be exposed."""
    settings = settings_for(dovecot, dovecot.root, "http://127.0.0.1:9/v1",
                            control_addr="0.0.0.0:8787")  # fmt: skip
    with pytest.raises(ConfigError, match="not a loopback address"):
        await service.run([settings], stop=asyncio.Event())


async def test_two_accounts_share_one_control_api(dovecot: dc.Dovecot) -> None:
    """Accounts on one address: POST needs account_id, drafts carry it, GET filters by it."""
    other = "second@example.test"
    server = dc.Dovecot(users=(dovecot.user, other)).start()
    try:
        addr = f"127.0.0.1:{dc.free_port()}"
        accounts: dict[str, dict[str, Any]] = {
            "acc_a": {"control_addr": addr},
            "acc_b": {"control_addr": addr, "user": other},
        }
        async with running(server, accounts) as daemon:
            status, body = await daemon.request("POST", "/drafts", {"draft_id": "d-x"})
            assert status == 400
            assert "acc_a" in body["error"]
            assert "acc_b" in body["error"]
            status, body = await daemon.request(
                "POST", "/drafts", {"draft_id": "d-x", "account_id": "acc_c"}
            )
            assert status == 404
            status, draft = await daemon.request(
                "POST", "/drafts", {"draft_id": "d-x", "account_id": "acc_b"}
            )
            assert (status, draft["account_id"]) == (202, "acc_b")
            await daemon.wait_state("d-x", "published")
            assert daemon.sims["acc_a"].requests == []
            _, only_a = await daemon.request("GET", "/drafts?account_id=acc_a")
            assert only_a == []
    finally:
        server.cleanup()


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and all(item.labels.get(k) == v for k, v in labels.items()):
                return float(item.value)
    return None


async def test_metrics_count_mail_submissions_and_drafts(dovecot: dc.Dovecot) -> None:
    """/metrics counts e-mails, submissions, drafts by state, API errors and the latency."""
    async with running(dovecot) as daemon:
        sim = daemon.sims["acc_inproc"]
        sim.script("d-spoofed", Script(checkpoints=("OTP",), decoy=True))
        await daemon.request("POST", "/drafts", {"draft_id": "d-spoofed"})
        await daemon.wait_state("d-spoofed", "published")
        sim.script("d-nf", Script.from_dict({"faults": ["errors/resource_not_found"]}))
        await daemon.request("POST", "/drafts", {"draft_id": "d-nf"})
        await daemon.wait_state("d-nf", "failed")
        status, text = await daemon.request("GET", "/metrics")
        assert status == 200
        account = {"account": "acc_inproc"}
        assert sample(text, "otp_bot_drafts", state="published", **account) == 1
        assert sample(text, "otp_bot_drafts", state="failed", **account) == 1
        assert sample(text, "otp_bot_drafts", state="queued", **account) == 0
        assert sample(text, "otp_bot_emails_total", result="trusted", **account) == 1
        assert sample(text, "otp_bot_emails_total", result="rejected", **account) == 1
        submitted = sample(text, "otp_bot_checkpoint_submissions_total", result="published",
                           **account)  # fmt: skip
        assert submitted == 1
        assert sample(text, "otp_bot_api_errors_total", type="errors/resource_not_found",
                      **account) == 1  # fmt: skip
        assert sample(text, "otp_bot_email_to_submit_seconds_count", input="code",
                      **account) == 1  # fmt: skip
        assert sample(text, "otp_bot_drafts_finished_total", outcome="published", error="",
                      **account) == 1  # fmt: skip
        assert sample(text, "otp_bot_drafts_finished_total", outcome="failed",
                      error="errors/resource_not_found", **account) == 1  # fmt: skip
        assert sample(text, "otp_bot_account_up", **account) == 1
        last = sample(text, "otp_bot_mailbox_last_progress_timestamp_seconds", **account)
        assert (last or 0) > 0


async def test_healthz_fails_when_the_mailbox_loop_stalls(dovecot: dc.Dovecot) -> None:
    """/healthz, and ?live=1 alike, is 200 while the mailbox loop progresses, 503 once stalled."""
    fast: dict[str, dict[str, Any]] = {
        "acc_inproc": {"imap_idle_interval": 0.3, "health_max_stale": 1.5, "imap_timeout": 1}
    }
    async with running(dovecot, fast) as daemon:
        status, body = await daemon.request("GET", "/healthz")
        assert status == 200, body
        assert body["accounts"][0]["mailbox"] == "watching"
        assert body["watching"] == 1  # of the accounts listed
        assert "live" not in body
        status, body = await daemon.request("GET", "/healthz?live=1")
        assert (status, body["status"], body["live"]) == (200, "ok", True), body
        dovecot.kill()
        status, body = await daemon.wait_health(503)
        assert status == 503
        assert "no mailbox progress" in body["accounts"][0]["problem"]
        # A stalled loop is what a restart fixes: the liveness check fails too.
        status, body = await daemon.request("GET", "/healthz?live=1")
        assert (status, body["status"], body["live"]) == (503, "unhealthy", True), body
        assert "no mailbox progress" in body["accounts"][0]["problem"]
