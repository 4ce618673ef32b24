"""The postpress client against the simulator on loopback: every answer, every failure."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from otp_bot.config import Settings
from otp_bot.errors import (
    AccountError,
    AlreadyPerformed,
    ApiError,
    ConfigError,
    DraftError,
    ExpiredLink,
    InputRejected,
    InvalidSolution,
    ProtocolError,
    TransientError,
)
from otp_bot.postpress.client import PostpressClient, RetryPolicy, publish_defaults
from otp_bot.postpress.wire import Checkpoint, Published, PublishOptions, parse_retry_after
from otp_bot.sim.app import Simulator
from otp_bot.sim.script import ERROR_STATUS, Fault, Script

API_KEY = "pp_test_k3y_never_logged"
ACCOUNT = "acc_linkedin_01TEST"
ATTEMPTS = 4
NO_WAIT = RetryPolicy(attempts=ATTEMPTS, max_time=600, wait=False)

# The design's table, written out per contract type (not derived from errors.py).
EXPECTED: dict[str, type[ApiError]] = {
    **dict.fromkeys(
        [
            "invalid_parameters",
            "malformed_request",
            "content_too_large",
            "invalid_url",
            "too_many_characters",
            "unescaped_characters",
            "missing_parameters",
            "limit_too_high",
            "checkpoint_error",
            "resource_not_found",
            "invalid_resource_identifier",
            "invalid_account",
            "unprocessable_entity",
            "account_configuration_error",
        ],
        DraftError,
    ),
    **dict.fromkeys(
        [
            "missing_credentials",
            "multiple_sessions",
            "wrong_account",
            "invalid_credentials",
            "invalid_proxy_credentials",
            "expired_credentials",
            "insufficient_privileges",
            "disconnected_account",
            "disconnected_feature",
            "invalid_credentials_but_valid_account_imap",
            "insufficient_permissions",
            "account_restricted",
            "account_mismatch",
            "unknown_authentication_context",
            "session_mismatch",
            "feature_not_subscribed",
            "subscription_required",
            "resource_access_restricted",
            "action_required",
            "authentication_intent_error",
        ],
        AccountError,
    ),
    **dict.fromkeys(
        [
            "unexpected_error",
            "provider_error",
            "no_client_session",
            "no_channel",
            "no_handler",
            "network_down",
            "service_unavailable",
            "request_timeout",
        ],
        TransientError,
    ),
    "invalid_checkpoint_solution": InvalidSolution,
    "expired_link": ExpiredLink,
    "action_already_performed": AlreadyPerformed,
}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator served on a free loopback port (no mailbox: mails are only recorded)."""
    simulator = Simulator(api_key=API_KEY, account_id=ACCOUNT)
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    simulator.base_url = str(server.make_url("/v1"))  # type: ignore[attr-defined]
    yield simulator
    await server.close()


def client_for(sim: Simulator, **kwargs: object) -> PostpressClient:
    options: dict[str, object] = {"retry": NO_WAIT, **kwargs}
    return PostpressClient(
        base_url=sim.base_url,  # type: ignore[attr-defined]
        api_key=API_KEY,
        account_id=ACCOUNT,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[PostpressClient]:
    """A client for ``sim`` whose retries never sleep."""
    async with client_for(sim) as api:
        yield api


def last_mail(sim: Simulator, draft_id: str) -> tuple[str, str | None]:
    mail = [m for d, m in sim.mails if d == draft_id and m.genuine][-1]
    return mail.code, mail.link


# --- the union --------------------------------------------------------------


async def test_publish_without_checkpoint(sim: Simulator, client: PostpressClient) -> None:
    """A draft LinkedIn takes at once decodes to Published with its job_state."""
    sim.script("d1", Script(checkpoints=(), job_state="review"))
    answer = await client.publish("d1")
    assert answer == Published(job_id=sim.draft("d1")["job_id"], job_state="review")
    assert sim.requests[0].body == {"account_id": ACCOUNT, "mode": "FREE", "service": "CLASSIC"}


async def test_otp_checkpoint_then_published(sim: Simulator, client: PostpressClient) -> None:
    """publish -> Checkpoint(OTP); the mailed code -> Published."""
    sim.script("d2", Script(checkpoints=("OTP",)))
    first = await client.publish("d2", PublishOptions(mode="PROMOTED", hiring_photo_frame=True))
    assert first == Checkpoint(job_id=sim.draft("d2")["job_id"], type="OTP")
    code, _ = last_mail(sim, "d2")
    assert isinstance(await client.solve_checkpoint("d2", code), Published)
    assert sim.requests[0].body["hiring_photo_frame"] is True


async def test_chain_link_then_otp(sim: Simulator, client: PostpressClient) -> None:
    """EMAIL_VERIFICATION solved by its link answers the next checkpoint, OTP."""
    sim.script("d3", Script(checkpoints=("EMAIL_VERIFICATION", "OTP")))
    assert (await client.publish("d3")).type == "EMAIL_VERIFICATION"  # type: ignore[union-attr]
    _, link = last_mail(sim, "d3")
    assert link is not None
    second = await client.solve_checkpoint("d3", link)
    assert isinstance(second, Checkpoint)
    assert second.type == "OTP"
    code, _ = last_mail(sim, "d3")
    assert isinstance(await client.solve_checkpoint("d3", code), Published)


async def test_pin_accepted_for_email_verification(sim: Simulator, client: PostpressClient) -> None:
    """The PIN of a confirmation e-mail is accepted as well as its link."""
    sim.script("d4", Script(checkpoints=("EMAIL_VERIFICATION",)))
    await client.publish("d4")
    pin, _ = last_mail(sim, "d4")
    assert isinstance(await client.solve_checkpoint("d4", pin), Published)


# --- the error table --------------------------------------------------------


def test_expected_table_covers_the_contract() -> None:
    """The test's table names exactly the contract's error types."""
    assert set(EXPECTED) == set(ERROR_STATUS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_contract_error_maps_to_its_action(
    sim: Simulator, client: PostpressClient, name: str
) -> None:
    """Each errors/... type raises the design's class; only transient ones are retried."""
    expected = EXPECTED[name]
    sim.script("e1", Script(faults=(Fault(f"errors/{name}"),) * ATTEMPTS))
    with pytest.raises(expected) as caught:
        await client.publish("e1")
    assert type(caught.value) is expected
    assert caught.value.type == f"errors/{name}"
    assert caught.value.problem.status == ERROR_STATUS[name]
    assert caught.value.known
    assert len(sim.requests) == (ATTEMPTS if expected is TransientError else 1)
    assert len({r.idempotency_key for r in sim.requests}) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [("expired_link", ExpiredLink), ("account_restricted", AccountError)],
)
async def test_quickstart_error_envelope(
    sim: Simulator, client: PostpressClient, name: str, expected: type[ApiError]
) -> None:
    """The {"error": {code, message, request_id}} envelope is read like the other."""
    sim.script("e2", Script(faults=(Fault(f"errors/{name}", envelope="error"),)))
    with pytest.raises(expected) as caught:
        await client.publish("e2")
    assert caught.value.type == f"errors/{name}"
    assert caught.value.problem.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, DraftError),
        (401, AccountError),
        (403, AccountError),
        (404, DraftError),
        (409, DraftError),
        (422, DraftError),
        (500, TransientError),
        (503, TransientError),
    ],
)
async def test_unknown_type_falls_back_on_status_class(
    sim: Simulator, client: PostpressClient, status: int, expected: type[ApiError]
) -> None:
    """An errors/... type we do not know is handled by its status class, marked unknown."""
    sim.script("e3", Script(faults=(Fault("errors/brand_new", status=status),) * ATTEMPTS))
    with pytest.raises(expected) as caught:
        await client.publish("e3")
    assert type(caught.value) is expected
    assert not caught.value.known


# --- retries ----------------------------------------------------------------


async def test_transient_errors_retried_with_one_key(
    sim: Simulator, client: PostpressClient
) -> None:
    """Two 503s then success: three requests, one Idempotency-Key, one log event per retry."""
    faults = (Fault("errors/service_unavailable"), Fault("errors/provider_error"))
    sim.script("r1", Script(checkpoints=(), faults=faults))
    with capture_logs() as logs:
        assert isinstance(await client.publish("r1"), Published)
    retries = [e for e in logs if e["event"] == "api_retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    assert [e["error"] for e in retries] == ["errors/service_unavailable", "errors/provider_error"]
    assert len({r.idempotency_key for r in sim.requests}) == 1
    assert [r.outcome for r in sim.requests] == ["fault", "fault", "answered"]
    assert API_KEY not in repr(logs)


async def test_on_retry_reports_each_retried_error(sim: Simulator, client: PostpressClient) -> None:
    """The on_retry hook (metrics) hears the type of every attempt that is retried."""
    seen: list[str] = []
    client.on_retry = seen.append
    faults = (Fault("errors/network_down"), Fault("errors/request_timeout"))
    sim.script("r2", Script(checkpoints=(), faults=faults))
    assert isinstance(await client.publish("r2"), Published)
    assert seen == ["errors/network_down", "errors/request_timeout"]


async def test_retry_after_seconds_honoured(sim: Simulator, client: PostpressClient) -> None:
    """A 429 with Retry-After: 7 waits exactly 7 s before the retry."""
    fault = Fault("errors/rate_limited", status=429, retry_after="7")
    sim.script("r2", Script(checkpoints=(), faults=(fault,)))
    with capture_logs() as logs:
        await client.publish("r2")
    (retry,) = [e for e in logs if e["event"] == "api_retry"]
    assert retry["wait"] == 7
    assert retry["status"] == 429


async def test_retry_after_http_date_honoured(sim: Simulator, client: PostpressClient) -> None:
    """A 429 with Retry-After as an HTTP date waits until that date."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    fault = Fault("errors/rate_limited", status=429, retry_after=when, envelope="error")
    sim.script("r3", Script(checkpoints=(), faults=(fault,)))
    with capture_logs() as logs:
        await client.publish("r3")
    (retry,) = [e for e in logs if e["event"] == "api_retry"]
    assert 30 < retry["wait"] <= 40


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        (" 12 ", 12.0),
        ("Sat, 28 Nov 2026 10:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 09:00:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        ("-3", None),
        ("", None),
    ],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    """Retry-After is delta-seconds or an HTTP date; anything else is ignored."""
    now = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == seconds


async def test_retry_after_beyond_budget_gives_up(sim: Simulator) -> None:
    """A Retry-After longer than the total retry time ends the call at once."""
    fault = Fault("errors/rate_limited", status=429, retry_after="120")
    sim.script("r4", Script(checkpoints=(), faults=(fault,)))
    async with client_for(sim, retry=RetryPolicy(attempts=5, max_time=60, wait=False)) as api:
        with pytest.raises(TransientError) as caught:
            await api.publish("r4")
    assert caught.value.problem.retry_after == 120
    assert len(sim.requests) == 1


async def test_backoff_grows_and_stays_bounded(sim: Simulator) -> None:
    """Waits between retries grow exponentially (with jitter) and never pass wait_max."""
    policy = RetryPolicy(attempts=6, max_time=600, wait_initial=1, wait_max=5, wait=False)
    sim.script("r5", Script(faults=(Fault("errors/network_down"),) * 6))
    async with client_for(sim, retry=policy) as api:
        with capture_logs() as logs, pytest.raises(TransientError):
            await api.publish("r5")
    waits = [e["wait"] for e in logs if e["event"] == "api_retry"]
    assert len(waits) == 5
    assert 1 <= waits[0] <= 2
    assert all(w <= 5 for w in waits)
    assert waits[-1] == 5


async def test_replay_after_504_following_acceptance(
    sim: Simulator, client: PostpressClient
) -> None:
    """The code was accepted but the answer was a 504: the retry replays Published."""
    script = Script(checkpoints=("OTP",), timeout_after_accept=1, timeout_endpoint="checkpoint")
    sim.script("r6", script)
    await client.publish("r6")
    code, _ = last_mail(sim, "r6")
    sim.requests.clear()
    answer = await client.solve_checkpoint("r6", code, idempotency_key="attempt-17")
    assert isinstance(answer, Published)
    assert [r.outcome for r in sim.requests] == ["timeout_after_accept", "replayed"]
    assert {r.idempotency_key for r in sim.requests} == {"attempt-17"}


async def test_publish_504_after_accept_sends_one_mail(
    sim: Simulator, client: PostpressClient
) -> None:
    """A publish accepted then answered 504 is replayed: one checkpoint, one e-mail."""
    sim.script("r8", Script(checkpoints=("OTP",), timeout_after_accept=1))
    answer = await client.publish("r8")
    assert isinstance(answer, Checkpoint)
    assert [r.outcome for r in sim.requests] == ["timeout_after_accept", "replayed"]
    assert len(sim.mails) == 1


async def test_resent_after_crash_with_stored_key_replays(
    sim: Simulator, client: PostpressClient
) -> None:
    """Re-sending a publish with the stored key returns the first answer, no second mail."""
    sim.script("r7", Script(checkpoints=("OTP",)))
    first = await client.publish("r7", idempotency_key="stored-key-1")
    again = await client.publish("r7", idempotency_key="stored-key-1")
    assert first == again
    assert len(sim.mails) == 1
    other = await client.publish("r7")
    assert other == first
    assert len(sim.mails) == 2
    assert sim.requests[2].idempotency_key not in {None, "stored-key-1"}


async def test_connection_refused_is_transient(sim: Simulator) -> None:
    """A closed port: every attempt fails, then TransientError(network_error, status 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with PostpressClient(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, account_id=ACCOUNT, retry=NO_WAIT
    ) as api:
        with capture_logs() as logs, pytest.raises(TransientError) as caught:
            await api.publish("n1")
    assert caught.value.problem.status == 0
    assert caught.value.type == "network_error"
    assert len([e for e in logs if e["event"] == "api_retry"]) == ATTEMPTS - 1
    assert logs[-1]["event"] == "api_gave_up"
    assert API_KEY not in str(caught.value)


async def test_timeout_is_transient(sim: Simulator) -> None:
    """A server slower than the client's timeout is retried, then network_error."""
    sim.script("n2", Script(faults=(Fault("errors/provider_error", delay=30),) * 2))
    policy = RetryPolicy(attempts=2, max_time=600, wait=False)
    async with client_for(sim, timeout=0.2, retry=policy) as api:
        with pytest.raises(TransientError) as caught:
            await api.publish("n2")
    assert caught.value.problem.title == "timeout"
    assert len(sim.requests) == 2


# --- outcomes of checkpoints -------------------------------------------------


async def test_expired_link_then_fresh_mail(sim: Simulator, client: PostpressClient) -> None:
    """expired_link raises ExpiredLink; publishing again mails a new link that works."""
    sim.script("c1", Script(checkpoints=("EMAIL_VERIFICATION",), expired_links=1))
    await client.publish("c1")
    _, old = last_mail(sim, "c1")
    with pytest.raises(ExpiredLink):
        await client.solve_checkpoint("c1", old or "")
    await client.publish("c1")
    _, new = last_mail(sim, "c1")
    assert new != old
    with pytest.raises(InvalidSolution):
        await client.solve_checkpoint("c1", old or "")
    assert isinstance(await client.solve_checkpoint("c1", new or ""), Published)


async def test_invalid_solution_burns_that_input(sim: Simulator, client: PostpressClient) -> None:
    """A rejected link stays rejected; the PIN of the same e-mail still passes."""
    sim.script("c2", Script(checkpoints=("EMAIL_VERIFICATION",), invalid_solutions=1))
    await client.publish("c2")
    pin, link = last_mail(sim, "c2")
    for _ in range(2):
        with pytest.raises(InvalidSolution):
            await client.solve_checkpoint("c2", link or "")
    assert isinstance(await client.solve_checkpoint("c2", pin), Published)


async def test_decoy_code_rejected(sim: Simulator, client: PostpressClient) -> None:
    """The spoofed e-mail's code arrives first and is refused; the genuine one passes."""
    sim.script("c3", Script(checkpoints=("OTP",), decoy=True))
    await client.publish("c3")
    (_, decoy), (_, genuine) = sim.mails
    assert not decoy.genuine
    assert genuine.genuine
    assert decoy.code != genuine.code
    with pytest.raises(InvalidSolution):
        await client.solve_checkpoint("c3", decoy.code)
    assert isinstance(await client.solve_checkpoint("c3", genuine.code), Published)


async def test_already_published(sim: Simulator, client: PostpressClient) -> None:
    """Publishing a draft someone else published raises AlreadyPerformed."""
    sim.script("c4", Script(already_published=True))
    with pytest.raises(AlreadyPerformed):
        await client.publish("c4")


async def test_wrong_api_key_is_account_error(sim: Simulator) -> None:
    """A key the API refuses is an account problem, and the key is not in the message."""
    async with PostpressClient(
        base_url=sim.base_url,  # type: ignore[attr-defined]
        api_key="pp_test_wrong_key",
        account_id=ACCOUNT,
        retry=NO_WAIT,
    ) as api:
        with capture_logs() as logs, pytest.raises(AccountError) as caught:
            await api.publish("a1")
    assert caught.value.type == "errors/invalid_credentials"
    assert "pp_test_wrong_key" not in str(caught.value) + repr(logs)


async def test_server_side_validation_error(sim: Simulator, client: PostpressClient) -> None:
    """An option value the API refuses comes back as DraftError invalid_parameters."""
    with pytest.raises(DraftError) as caught:
        await client.publish("v1", {"mode": "GOLD"})
    assert caught.value.type == "errors/invalid_parameters"


# --- bad answers --------------------------------------------------------------

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault(status=200, body="hello"), "not JSON"),
        (
            Fault(status=200, body=HTML_PAGE, content_type="text/html"),
            "not JSON (HTTP 200, text/html",
        ),
        (Fault(status=200, body="[1, 2]"), "not an object"),
        (Fault(status=200, body='{"object": "LinkedinJobPostingDeleted"}'), "unknown"),
        (Fault(status=200, body='{"job_id": "1"}'), "no string 'object'"),
        (
            Fault(status=200, body='{"object": "LinkedinJobPostingPublished", "job_id": "1"}'),
            "'job_state' is missing",
        ),
        (
            Fault(
                status=200,
                body='{"object": "LinkedinJobPostingPublished", "job_id": 7, '
                '"job_state": "active"}',
            ),
            "'job_id' is not a non-empty string",
        ),
        (
            Fault(
                status=200,
                body='{"object": "LinkedinJobPostingPublishCheckpoint", '
                '"job_id": "1", "type": "CAPTCHA"}',
            ),
            'unknown checkpoint type "CAPTCHA"',
        ),
        (Fault(status=200, body="\xff\xfe", content_type="application/octet-stream"), "not JSON"),
        (Fault(status=400, body=HTML_PAGE, content_type="text/html"), "not JSON (HTTP 400"),
        (Fault(status=404, body='{"message": "no"}'), "not an error envelope"),
    ],
)
async def test_bad_answer_is_one_protocol_error(
    sim: Simulator, client: PostpressClient, fault: Fault, words: str
) -> None:
    """An unreadable answer ends in one ProtocolError naming the problem; never retried."""
    sim.script("m1", Script(faults=(fault,)))
    with pytest.raises(ProtocolError) as caught:
        await client.publish("m1")
    assert words in str(caught.value)
    assert "publish of draft m1" in str(caught.value)
    assert "nginx" not in str(caught.value)
    assert len(sim.requests) == 1


async def test_redirect_not_followed(sim: Simulator, client: PostpressClient) -> None:
    """A redirect is a ProtocolError: the API key never follows it to another host."""
    target = f"{sim.base_url}/linkedin/jobs/m5/publish"  # type: ignore[attr-defined]
    fault = Fault(status=307, body="", content_type="text/plain", headers={"Location": target})
    sim.script("m4", Script(faults=(fault,)))
    with pytest.raises(ProtocolError, match=r"redirect \(HTTP 307\)"):
        await client.publish("m4")
    assert len(sim.requests) == 1


async def test_huge_body_refused(sim: Simulator) -> None:
    """A body larger than max_body_bytes is not read to the end: ProtocolError."""
    big = '{"object": "LinkedinJobPostingPublished", "pad": "' + "x" * 50_000 + '"}'
    sim.script("m2", Script(faults=(Fault(status=200, body=big),)))
    async with client_for(sim, max_body_bytes=10_000) as api:
        with pytest.raises(ProtocolError, match="larger than 10000 bytes"):
            await api.publish("m2")


async def test_gateway_html_page_is_transient(sim: Simulator, client: PostpressClient) -> None:
    """A proxy's HTML 502 page is retried by status class, then TransientError."""
    fault = Fault(status=502, body=HTML_PAGE, content_type="text/html")
    sim.script("m3", Script(faults=(fault,) * ATTEMPTS))
    with pytest.raises(TransientError, match="HTTP 502 without an error envelope"):
        await client.publish("m3")
    assert len(sim.requests) == ATTEMPTS


# --- inputs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("draft_id", "value"),
    [
        ("", "123456"),
        ("   ", "123456"),
        ("d\n1", "123456"),
        ("x" * 201, "123456"),
        ("ok", ""),
        ("ok", "123456\r\nX-Injected: 1"),
        ("ok", "12\u200b3456"),
        ("ok", " 123456"),
        ("ok", "1" * 4097),
    ],
)
async def test_inputs_validated_before_sending(
    sim: Simulator, client: PostpressClient, draft_id: str, value: str
) -> None:
    """Empty, overlong or control-character inputs are refused; nothing is sent."""
    with pytest.raises(InputRejected):
        await client.solve_checkpoint(draft_id, value)
    assert sim.requests == []


async def test_bad_idempotency_key_and_options_refused(
    sim: Simulator, client: PostpressClient
) -> None:
    """A key with a newline and an unknown publish option are refused before sending."""
    with pytest.raises(InputRejected):
        await client.publish("ok", idempotency_key="a\nb")
    with pytest.raises(InputRejected, match="colour"):
        await client.publish("ok", {"colour": "blue"})
    assert sim.requests == []


async def test_draft_id_is_quoted_in_the_path(sim: Simulator, client: PostpressClient) -> None:
    """A draft id with '/' or '?' stays one path segment."""
    sim.script("a/b?c", Script(checkpoints=()))
    assert isinstance(await client.publish("a/b?c"), Published)
    assert sim.requests[0].draft_id == "a/b?c"


def test_client_refuses_unusable_settings() -> None:
    """A key with a line break or a non-http base URL is refused, the key not echoed."""
    with pytest.raises(InputRejected) as caught:
        PostpressClient(base_url="http://x/v1", api_key="pp_test_a\nb", account_id=ACCOUNT)
    assert "pp_test_a" not in str(caught.value)
    with pytest.raises(ConfigError):
        PostpressClient(base_url="ftp://x/v1", api_key=API_KEY, account_id=ACCOUNT)


async def test_logs_never_hold_the_key_or_the_code(sim: Simulator, client: PostpressClient) -> None:
    """Across publish, retries and a solve, no log event carries the API key or the code."""
    faults = (Fault("errors/no_channel", endpoint="checkpoint"),)
    sim.script("s1", Script(checkpoints=("OTP",), faults=faults))
    with capture_logs() as logs:
        await client.publish("s1")
        code, _ = last_mail(sim, "s1")
        assert isinstance(await client.solve_checkpoint("s1", code), Published)
    assert {e["event"] for e in logs} >= {"api_answer", "api_retry"}
    assert API_KEY not in repr(logs)
    assert code not in repr(logs)


# --- settings -----------------------------------------------------------------


def test_from_settings() -> None:
    """The client and its retry policy take their values from Settings."""
    settings = Settings(  # type: ignore[call-arg]
        account_id=ACCOUNT,
        api_key=API_KEY,
        api_base_url="http://127.0.0.1:9/v1",
        api_retry_attempts=3,
        api_retry_max_time=42,
        imap_host="127.0.0.1",
        imap_user="bot@example.test",
        imap_password="pw",
        imap_security="none",
    )
    assert RetryPolicy.from_settings(settings) == RetryPolicy(attempts=3, max_time=42)
    client = PostpressClient.from_settings(settings)
    assert API_KEY not in repr(client)
    assert publish_defaults(settings) == PublishOptions()
