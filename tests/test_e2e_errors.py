"""End to end: every row of the design's error table, against the real daemon.

The simulator serves each answer (scripted per draft); the daemon runs as a
process against Dovecot; the draft's end state and the requests the simulator
received show what the bot did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Daemon, Simulator, Stack, running_stack, wait_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "bot@example.test"
ACCOUNT = "acc_errors"


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh Dovecot, simulator and daemon per test (its logs are printed on failure)."""
    with running_stack([USER]) as stack:
        yield stack


def start(stack: Stack, **settings: str) -> tuple[Simulator, Daemon]:
    return stack.start_account(ACCOUNT, USER, **settings)


Run = tuple[Simulator, Daemon, dict[str, Any]]


def run_draft(stack: Stack, script: dict[str, Any], **settings: str) -> Run:
    sim, daemon = start(stack, **settings)
    sim.script("d-row", **script)
    daemon.client.publish("d-row")
    draft = daemon.wait_state("d-row", "published", "failed", timeout=40)
    return sim, daemon, draft


def keys(sim: Simulator, endpoint: str) -> set[str]:
    return {r["idempotency_key"] for r in sim.requests("d-row", endpoint)}


def fault(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, **extra}


@pytest.mark.parametrize(
    "job_state",
    ["review", "closed"],
    ids=lambda s: f"job-{s}",  # "active": in every other test
)
def test_published_with_any_job_state(stack: Stack, job_state: str) -> None:
    """200 Published (any job_state): published, job_state and job_id recorded."""
    sim, _daemon, draft = run_draft(stack, {"checkpoints": [], "job_state": job_state})
    assert draft["state"] == "published"
    assert draft["job_state"] == job_state
    assert draft["job_id"] == sim.admin("GET", "/_sim/drafts/d-row")["job_id"]


def test_already_performed_is_success(stack: Stack) -> None:
    """422 action_already_performed: the draft is published (idempotent success)."""
    _sim, _daemon, draft = run_draft(stack, {"already_published": True})
    assert draft["state"] == "published", draft
    assert draft["error"] is None


TRANSIENT = [
    pytest.param(fault("errors/rate_limited", status=429, retry_after="1"), id="429"),
    pytest.param(fault("errors/provider_error"), id="500-provider_error"),
    pytest.param(fault("errors/unexpected_error"), id="500-unexpected_error"),
    pytest.param(fault("errors/service_unavailable"), id="503-service_unavailable"),
    pytest.param(fault("errors/no_client_session"), id="503-no_client_session"),
    pytest.param(fault("errors/request_timeout"), id="504-request_timeout"),
    pytest.param(fault("errors/new_outage_kind", status=502), id="502-unknown-type"),
]


@pytest.mark.parametrize("answer", TRANSIENT)
def test_transient_answers_are_retried_with_the_same_key(
    stack: Stack, answer: dict[str, Any]
) -> None:
    """429, 5xx, 504 and unknown 5xx types: retried with backoff under one Idempotency-Key."""
    script = {"checkpoints": [], "faults": [{**answer, "endpoint": "publish"}]}
    sim, _daemon, draft = run_draft(stack, script)
    assert draft["state"] == "published", draft
    assert len(sim.requests("d-row", "publish")) == 2
    assert len(keys(sim, "publish")) == 1


def test_timeout_after_accept_is_replayed(stack: Stack) -> None:
    """504 after the API acted: the retry under the same key gets the original answer."""
    script = {"checkpoints": ["OTP"], "timeout_after_accept": 1, "timeout_endpoint": "checkpoint"}
    sim, _daemon, draft = run_draft(stack, script)
    assert draft["state"] == "published", draft
    outcomes = [r["outcome"] for r in sim.requests("d-row", "checkpoint")]
    assert outcomes == ["timeout_after_accept", "replayed"]
    assert len(keys(sim, "checkpoint")) == 1


def test_network_error_is_retried(stack: Stack) -> None:
    """No answer within OTP_BOT_API_TIMEOUT: a network error, retried under the same key."""
    slow = fault("errors/service_unavailable", delay=3.0, endpoint="publish")
    sim, _daemon, draft = run_draft(
        stack, {"checkpoints": [], "faults": [slow]}, OTP_BOT_API_TIMEOUT="1"
    )
    assert draft["state"] == "published", draft
    assert len(keys(sim, "publish")) == 1


ACCOUNT_ERRORS = [
    pytest.param("errors/expired_credentials", id="401-expired_credentials"),
    pytest.param("errors/disconnected_account", id="401-disconnected_account"),
    pytest.param("errors/account_restricted", id="403-account_restricted"),
]


@pytest.mark.parametrize("kind", ACCOUNT_ERRORS)
def test_account_errors_hold_the_account_until_a_probe_resumes_it(stack: Stack, kind: str) -> None:
    """401/403 credential and account types: the draft is held, the account unhealthy but
    alive, a new draft queues; once reconnected a probe resumes both, nothing failed."""
    sim, daemon = start(stack, OTP_BOT_HOLD_PROBE_MIN="0.5", OTP_BOT_HOLD_PROBE_MAX="1")
    sim.script("d-row", disconnect_account=kind)
    daemon.client.publish("d-row")
    held = daemon.wait_state("d-row", "held")
    assert held["error"] == kind
    health = daemon.client.health()
    assert health.status == 503
    [account] = health.body["accounts"]
    assert (account["account_error"], account["held"]["error"]) == (kind, kind)
    assert kind in account["problem"]
    assert daemon.client.health(live=True).status == 200  # a restart cannot fix the account
    later = daemon.client.publish("d-after")
    assert later["state"] == "queued"  # the held account queues new work
    probes = wait_until(
        "two probes", lambda: (n := sim.admin("GET", "/_sim/account")["probes"]) >= 2 and n, 20
    )
    assert sim.requests("d-after") == []
    sim.admin("POST", "/_sim/account", {"connected": True})
    for draft_id in ("d-row", "d-after"):
        assert daemon.wait_state(draft_id, "published", "failed")["state"] == "published"
    assert sim.admin("GET", "/_sim/account")["probes"] > probes
    assert daemon.client.health().status == 200


DRAFT_ERRORS = [
    pytest.param("errors/invalid_parameters", "publish", None, id="400-invalid_parameters"),
    pytest.param("errors/malformed_request", "publish", None, id="400-malformed_request"),
    pytest.param("errors/resource_not_found", "publish", None, id="404-resource_not_found"),
    pytest.param("errors/unprocessable_entity", "publish", None, id="422-unprocessable_entity"),
    pytest.param("errors/checkpoint_error", "checkpoint", None, id="401-checkpoint_error"),
    pytest.param("errors/brand_new_refusal", "publish", 409, id="409-unknown-type"),
]


@pytest.mark.parametrize(("kind", "endpoint", "status"), DRAFT_ERRORS)
def test_draft_errors_fail_the_draft(
    stack: Stack, kind: str, endpoint: str, status: int | None
) -> None:
    """400, 404, other 422, 401 checkpoint_error, unknown 4xx: failed with the type, no retry."""
    answer = fault(kind, endpoint=endpoint, **({"status": status} if status else {}))
    sim, daemon, draft = run_draft(stack, {"checkpoints": ["OTP"], "faults": [answer]})
    assert draft["state"] == "failed"
    assert draft["error"] == kind
    assert len(sim.requests("d-row", endpoint)) == 1
    assert daemon.client.health().status == 200  # only the draft failed, not the account
