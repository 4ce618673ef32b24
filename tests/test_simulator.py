"""The postpress simulator: the contract on the wire, its scripts, LinkedIn's e-mails."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestClient, TestServer

from otp_bot.mail.extract import extract
from otp_bot.mail.trust import authentication_verdict, sender_domain_trusted
from otp_bot.postpress.client import PostpressClient, RetryPolicy
from otp_bot.postpress.wire import Checkpoint, Published
from otp_bot.sim.app import Simulator
from otp_bot.sim.linkedin_mail import MailTarget, compose
from otp_bot.sim.script import Fault, Script, script_for_draft
from tests.dovecot import Dovecot

API_KEY = "pp_test_simulator"
ACCOUNT = "acc_sim"
HEADERS = {"X-API-KEY": API_KEY}
PUBLISH = "/v1/linkedin/jobs/{}/publish"
CHECKPOINT = "/v1/linkedin/jobs/{}/checkpoint"


@pytest.fixture
async def http() -> AsyncIterator[tuple[Simulator, TestClient[Any, Any]]]:
    """A simulator without a mailbox and a raw HTTP client for it."""
    sim = Simulator(api_key=API_KEY, account_id=ACCOUNT)
    async with TestClient(TestServer(sim.app, host="127.0.0.1")) as client:
        yield sim, client


async def post(client: TestClient[Any, Any], path: str, body: object, **headers: str) -> Any:
    response = await client.post(path, json=body, headers={**HEADERS, **headers})
    return response.status, await response.json()


# --- the contract on the wire ------------------------------------------------


async def test_auth_required(http: tuple[Simulator, TestClient[Any, Any]]) -> None:
    """No X-API-KEY: 401 missing_credentials; a wrong one: 401 invalid_credentials."""
    sim, client = http
    response = await client.post(PUBLISH.format("d"), json={"account_id": ACCOUNT})
    assert response.status == 401
    assert (await response.json())["type"] == "errors/missing_credentials"
    status, body = await post(
        client, PUBLISH.format("d"), {"account_id": ACCOUNT}, **{"X-API-KEY": "nope"}
    )
    assert (status, body["type"]) == (401, "errors/invalid_credentials")
    assert not any(r.authorized for r in sim.requests)
    assert "nope" not in json.dumps([r.body for r in sim.requests])


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [
        (PUBLISH, "not an object", 400, "malformed_request"),
        (PUBLISH, {}, 400, "missing_parameters"),
        (PUBLISH, {"account_id": ACCOUNT, "mode": "GOLD"}, 400, "invalid_parameters"),
        (PUBLISH, {"account_id": ACCOUNT, "colour": "red"}, 400, "invalid_parameters"),
        (
            PUBLISH,
            {"account_id": ACCOUNT, "budget": {"daily": {"currency": "EUR", "amount": 5}}},
            400,
            "invalid_parameters",
        ),
        (
            PUBLISH,
            {
                "account_id": ACCOUNT,
                "mode": "PROMOTED",
                "budget": {"daily": {"currency": "EUR", "amount": 10**9}},
            },
            400,
            "limit_too_high",
        ),
        (PUBLISH, {"account_id": "acc_other"}, 404, "resource_not_found"),
        (CHECKPOINT, {"account_id": ACCOUNT}, 400, "missing_parameters"),
        (CHECKPOINT, {"account_id": ACCOUNT, "input": 123456}, 400, "invalid_parameters"),
        (CHECKPOINT, {"account_id": ACCOUNT, "input": "1" * 3000}, 400, "too_many_characters"),
        (CHECKPOINT, {"account_id": ACCOUNT, "input": "12\n34"}, 400, "unescaped_characters"),
        (CHECKPOINT, {"account_id": ACCOUNT, "input": "123456"}, 401, "checkpoint_error"),
    ],
)
async def test_body_validation(
    http: tuple[Simulator, TestClient[Any, Any]], path: str, body: object, status: int, kind: str
) -> None:
    """Bodies that break the contract get the contract's 400/401/404 types."""
    _, client = http
    got_status, got = await post(client, path.format("d9"), body)
    assert (got_status, got["type"], got["status"]) == (status, f"errors/{kind}", status)
    assert got["title"]


async def test_api_v1_spelling_served(http: tuple[Simulator, TestClient[Any, Any]]) -> None:
    """The curl example's /api/v1 prefix reaches the same API as /v1."""
    sim, client = http
    sim.script("d", Script(checkpoints=()))
    status, body = await post(client, "/api" + PUBLISH.format("d"), {"account_id": ACCOUNT})
    assert (status, body["object"]) == (200, "LinkedinJobPostingPublished")


async def test_quickstart_envelope(http: tuple[Simulator, TestClient[Any, Any]]) -> None:
    """envelope="error" answers {"error": {code, message, request_id}}."""
    sim, client = http
    sim.envelope = "error"
    status, body = await post(client, CHECKPOINT.format("d"), {"account_id": ACCOUNT})
    assert status == 400
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == "errors/missing_parameters"


async def test_key_reused_with_another_body(http: tuple[Simulator, TestClient[Any, Any]]) -> None:
    """An Idempotency-Key replays only the same body; another body is refused."""
    sim, client = http
    sim.script("d", Script(checkpoints=()))
    first = await post(
        client, PUBLISH.format("d"), {"account_id": ACCOUNT}, **{"Idempotency-Key": "k1"}
    )
    again = await post(
        client, PUBLISH.format("d"), {"account_id": ACCOUNT}, **{"Idempotency-Key": "k1"}
    )
    other = await post(
        client,
        PUBLISH.format("d"),
        {"account_id": ACCOUNT, "mode": "PROMOTED"},
        **{"Idempotency-Key": "k1"},
    )
    assert first == again
    assert first[1]["object"] == "LinkedinJobPostingPublished"
    assert other[0] == 422
    assert [r.outcome for r in sim.requests] == ["answered", "replayed", "rejected"]


async def test_reissued_checkpoint_invalidates_old_code(
    http: tuple[Simulator, TestClient[Any, Any]],
) -> None:
    """Publishing again mails a fresh code; only the newest code is accepted."""
    sim, client = http
    sim.script("d", Script(checkpoints=("OTP",)))
    await post(client, PUBLISH.format("d"), {"account_id": ACCOUNT})
    await post(client, PUBLISH.format("d"), {"account_id": ACCOUNT})
    (_, old), (_, new) = sim.mails
    assert old.message_id != new.message_id
    body = {"account_id": ACCOUNT, "input": old.code}
    if old.code != new.code:
        assert (await post(client, CHECKPOINT.format("d"), body))[0] == 401
    body["input"] = new.code
    assert (await post(client, CHECKPOINT.format("d"), body))[1]["job_state"] == "active"


# --- scripting and admin --------------------------------------------------------


async def test_admin_endpoints(http: tuple[Simulator, TestClient[Any, Any]]) -> None:
    """/_sim/script scripts a draft; requests, mails and drafts are readable; reset forgets."""
    sim, client = http
    script = {"checkpoints": ["EMAIL_VERIFICATION"], "faults": ["errors/provider_error"]}
    response = await client.post("/_sim/script", json={"draft_id": "a1", "script": script})
    assert (await response.json())["faults_left"] == 1
    first = await post(client, PUBLISH.format("a1"), {"account_id": ACCOUNT})
    second = await post(client, PUBLISH.format("a1"), {"account_id": ACCOUNT})
    assert first[0] == 500
    assert second[1]["type"] == "EMAIL_VERIFICATION"
    requests = await (await client.get("/_sim/requests")).json()
    assert [r["outcome"] for r in requests] == ["fault", "answered"]
    mails = await (await client.get("/_sim/mails")).json()
    assert mails[0]["link"].startswith("https://www.linkedin.com/psettings/email/confirm?")
    draft = await (await client.get("/_sim/drafts/a1")).json()
    assert draft["pending"] == "EMAIL_VERIFICATION"
    await client.post("/_sim/reset")
    assert sim.requests == []
    assert sim.mails == []


@pytest.mark.parametrize(
    "payload",
    [
        {"script": {}},
        {"draft_id": "x", "script": {"checkpoints": ["CAPTCHA"]}},
        {"draft_id": "x", "script": {"surprise": 1}},
        {"draft_id": "x", "script": {"faults": [{"type": "errors/not_in_contract"}]}},
        {"draft_id": "x", "script": {"faults": [{"envelope": "xml"}]}},
    ],
)
async def test_admin_rejects_bad_scripts(
    http: tuple[Simulator, TestClient[Any, Any]], payload: dict[str, Any]
) -> None:
    """A script the simulator cannot follow is refused with 400, not half-applied."""
    _, client = http
    response = await client.post("/_sim/script", json=payload)
    assert response.status == 400
    assert "error" in await response.json()


def test_draft_id_conventions() -> None:
    """Words in a draft id choose its script (docs/simulator.md)."""
    assert script_for_draft("job-1").checkpoints == ("OTP",)
    assert script_for_draft("job-verify-2").checkpoints == ("EMAIL_VERIFICATION",)
    assert script_for_draft("job-chain-3").checkpoints == ("EMAIL_VERIFICATION", "OTP")
    assert script_for_draft("job-direct").checkpoints == ()
    flaky = script_for_draft("flaky-ratelimit-1")
    assert [f.http_status for f in flaky.faults] == [503, 500, 429]
    assert script_for_draft("restricted-1").faults == (
        Fault("errors/account_restricted", endpoint="publish"),
    )
    assert script_for_draft("unsigned-1").decoy_style == "unsigned"
    odd = script_for_draft("decoy-expired-invalid-timeout-nomail-review")
    assert (odd.decoy, odd.expired_links, odd.invalid_solutions) == (True, 1, 1)
    assert (odd.timeout_after_accept, odd.mail, odd.job_state) == (1, False, "review")
    assert script_for_draft("slowmail").mail_delay > 0
    assert script_for_draft("Published-Elsewhere").already_published


# --- LinkedIn's e-mails ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["OTP", "EMAIL_VERIFICATION"])
def test_genuine_mail_is_trusted_and_readable(kind: str) -> None:
    """A genuine mail passes the trust rules and extract reads its code (and link)."""
    mail = compose(kind, "bot@example.test", datetime.now(UTC), authserv_id="mx.example.test")
    message = email.message_from_bytes(mail.raw)
    assert sender_domain_trusted(message["From"])
    assert authentication_verdict(message.get_all("Authentication-Results")) is None
    assert message.keys()[0] == "Authentication-Results"
    assert message.get_content_type() == "multipart/alternative"
    evidence = extract(mail.raw)
    assert evidence.trusted
    assert evidence.code == mail.code
    assert evidence.link == mail.link
    assert (mail.link is not None) == (kind == "EMAIL_VERIFICATION")


def test_a_mail_is_rendered_once_and_says_what_compose_returned() -> None:
    """compose() decides the code, link and Message-ID; the bytes (rendered at the first
    raw, on the simulator's delivery thread) carry them, the same bytes every time."""
    mail = compose("EMAIL_VERIFICATION", "bot@example.test", datetime.now(UTC), authserv_id="mx")
    first = mail.raw
    assert mail.raw is first
    message = email.message_from_bytes(first)
    assert message["Message-ID"] == mail.message_id
    assert message["To"] == "bot@example.test"
    evidence = extract(first)
    assert (evidence.code, evidence.link) == (mail.code, mail.link)


def test_lookalike_decoy_is_not_trusted() -> None:
    """A look-alike decoy fails the sender check and its topmost results; a lower one is forged."""
    mail = compose(
        "OTP",
        "bot@example.test",
        datetime.now(UTC),
        authserv_id="mx.example.test",
        decoy="lookalike",
    )
    message = email.message_from_bytes(mail.raw)
    results = message.get_all("Authentication-Results")
    assert not mail.genuine
    assert not sender_domain_trusted(message["From"])
    assert authentication_verdict(results) is not None
    assert authentication_verdict(results[1:]) is None  # the forged lower header
    assert not extract(mail.raw).trusted


def test_unsigned_decoy_is_not_trusted() -> None:
    """A decoy from linkedin.com without passing DKIM/DMARC fails on its results alone."""
    mail = compose(
        "EMAIL_VERIFICATION",
        "bot@example.test",
        datetime.now(UTC),
        authserv_id="mx.example.test",
        decoy="unsigned",
    )
    message = email.message_from_bytes(mail.raw)
    assert sender_domain_trusted(message["From"])
    assert authentication_verdict(message.get_all("Authentication-Results")) is not None
    assert not extract(mail.raw).trusted


def test_codes_are_fresh_six_digit_strings() -> None:
    """Codes are six digits kept as strings, different from one mail to the next."""
    codes = {
        compose("OTP", "u@example.test", datetime.now(UTC), authserv_id="mx").code
        for _ in range(50)
    }
    assert len(codes) > 45
    assert all(len(code) == 6 and code.isdigit() for code in codes)


def read_inbox(server: Dovecot) -> list[Message]:
    conn = server.client()
    try:
        conn.select("INBOX", readonly=True)
        _, data = conn.uid("SEARCH", "ALL")
        messages = []
        for uid in data[0].split():
            _, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = parts[0]
            assert isinstance(raw, tuple)
            messages.append(email.message_from_bytes(raw[1]))
        return messages
    finally:
        conn.logout()


async def serve_with_mailbox(target: MailTarget) -> tuple[Simulator, TestServer]:
    sim = Simulator(api_key=API_KEY, account_id=ACCOUNT, mailbox=target)
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    return sim, server


@pytest.mark.parametrize("style", ["lookalike", "unsigned"])
async def test_delivery_to_dovecot_decoy_first(dovecot: Dovecot, style: str) -> None:
    """A checkpoint APPENDs the decoy then the genuine mail; only the genuine code passes."""
    target = MailTarget(dovecot.host, dovecot.port, dovecot.user, dovecot.password, "none")
    sim, server = await serve_with_mailbox(target)
    retry = RetryPolicy(attempts=2, max_time=60, wait=False)
    try:
        async with PostpressClient(
            base_url=str(server.make_url("/v1")), api_key=API_KEY, account_id=ACCOUNT, retry=retry
        ) as api:
            sim.script("m1", Script(checkpoints=("OTP",), decoy=True, decoy_style=style))
            assert isinstance(await api.publish("m1"), Checkpoint)
            await sim.wait_for_mail()
            assert sim.delivery_errors == []
            decoy, genuine = [extract(m.as_bytes()) for m in read_inbox(dovecot)]
            assert (decoy.trusted, genuine.trusted) == (False, True)
            assert genuine.code is not None
            assert isinstance(await api.solve_checkpoint("m1", genuine.code), Published)
    finally:
        await server.close()


async def test_delayed_and_missing_mail(dovecot: Dovecot) -> None:
    """mail_delay holds the e-mail back; mail=False never sends one."""
    target = MailTarget(dovecot.host, dovecot.port, dovecot.user, dovecot.password, "none")
    sim, server = await serve_with_mailbox(target)
    try:
        async with TestClient(server) as client:
            sim.script("late", Script(mail_delay=2.0))
            sim.script("never", Script(mail=False))
            assert (await post(client, PUBLISH.format("never"), {"account_id": ACCOUNT}))[0] == 200
            await post(client, PUBLISH.format("late"), {"account_id": ACCOUNT})
            assert read_inbox(dovecot) == []  # the 2 s delay is still running
            await sim.wait_for_mail()
    finally:
        await server.close()
    (message,) = read_inbox(dovecot)
    assert extract(message.as_bytes()).code == sim.mails[0][1].code
    assert [draft_id for draft_id, _ in sim.mails] == ["late"]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_delivery_over_tls(dovecot_tls: Dovecot, security: str) -> None:
    """Mail is APPENDed over implicit TLS and STARTTLS, verified against the CA."""
    assert dovecot_tls.certs is not None
    port = dovecot_tls.tls_port if security == "tls" else dovecot_tls.port
    target = MailTarget(
        "localhost",
        port,
        dovecot_tls.user,
        dovecot_tls.password,
        security,
        ca_file=dovecot_tls.certs.ca,
    )
    sim, server = await serve_with_mailbox(target)
    try:
        async with TestClient(server) as client:
            sim.script("t1", Script(checkpoints=("EMAIL_VERIFICATION",)))
            await post(client, PUBLISH.format("t1"), {"account_id": ACCOUNT})
            await sim.wait_for_mail()
    finally:
        await server.close()
    assert sim.delivery_errors == []
    (message,) = read_inbox(dovecot_tls)
    assert message["Subject"] == "Please confirm your email address"


async def test_delivery_failure_is_recorded_not_fatal() -> None:
    """An unreachable mailbox is logged and recorded; the API still answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = MailTarget("127.0.0.1", port, "bot", "pw-never-shown", "none", timeout=5)
    sim, server = await serve_with_mailbox(target)
    try:
        async with TestClient(server) as client:
            status, _ = await post(client, PUBLISH.format("f1"), {"account_id": ACCOUNT})
            await sim.wait_for_mail()
    finally:
        await server.close()
    assert status == 200
    assert len(sim.delivery_errors) == 1
    assert "pw-never-shown" not in sim.delivery_errors[0]
    assert "pw-never-shown" not in repr(target)


# --- otp-bot simulate ---------------------------------------------------------------


def env_file(tmp_path: Path, host: str, port: int, user: str, password: str) -> Path:
    env = tmp_path / "sim.env"
    env.write_text(
        f"OTP_BOT_ACCOUNT_ID={ACCOUNT}\nOTP_BOT_API_KEY={API_KEY}\nOTP_BOT_IMAP_HOST={host}\n"
        f"OTP_BOT_IMAP_PORT={port}\nOTP_BOT_IMAP_USER={user}\nOTP_BOT_IMAP_PASSWORD={password}\n"
        "OTP_BOT_IMAP_SECURITY=none\nOTP_BOT_LOG_FORMAT=json\n"
    )
    return env


@contextlib.asynccontextmanager
async def simulate_process(*args: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Run `otp-bot simulate --port 0 ARGS`; yield its base URL; stop it with SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otp_bot", "simulate", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent, env={**os.environ, "PYTHONPATH": "."},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("postpress simulator listening on http://127.0.0.1:"), line
        yield line.rsplit(" ", 1)[1].strip(), proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def cli_client(base_url: str) -> PostpressClient:
    retry = RetryPolicy(attempts=1, max_time=10, wait=False)
    return PostpressClient(base_url=base_url, api_key=API_KEY, account_id=ACCOUNT, retry=retry)


async def test_cli_simulate_serves_until_sigterm(tmp_path: Path) -> None:
    """`otp-bot simulate --port 0` prints its URL, serves scripts from a file, exits 0 on TERM."""
    env = env_file(tmp_path, "127.0.0.1", 143, "bot@example.test", "pw")
    scripts = tmp_path / "scripts.json"
    scripts.write_text(json.dumps({"job-7": {"checkpoints": [], "job_state": "paused"}}))
    args = ("--env-file", str(env), "--no-mail", "--script", str(scripts))
    async with simulate_process(*args) as (base_url, proc):
        async with cli_client(base_url) as api:
            answer = await api.publish("job-7")
        assert answer == Published((await api_draft(base_url, "job-7"))["job_id"], "paused")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        _, stderr = await proc.communicate()
    assert API_KEY not in stderr.decode()


async def test_cli_simulate_mails_the_env_files_mailbox(tmp_path: Path, dovecot: Dovecot) -> None:
    """Run as a process, the simulator APPENDs to OTP_BOT_IMAP_*; the mailed link publishes."""
    env = env_file(tmp_path, dovecot.host, dovecot.port, dovecot.user, dovecot.password)
    async with simulate_process("--env-file", str(env)) as (base_url, proc):
        async with cli_client(base_url) as api:
            assert await api.publish("job-verify-3") == Checkpoint(
                (await api_draft(base_url, "job-verify-3"))["job_id"], "EMAIL_VERIFICATION"
            )
            admin = base_url.removesuffix("/v1")
            async with ClientSession() as session:
                waited = await session.post(
                    f"{admin}/_sim/wait-for-mail", timeout=ClientTimeout(30)
                )
                assert await waited.json() == {"sent": 1, "errors": []}
            (message,) = read_inbox(dovecot)
            evidence = extract(message.as_bytes())
            assert evidence.trusted
            assert evidence.link is not None
            assert isinstance(await api.solve_checkpoint("job-verify-3", evidence.link), Published)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def api_draft(base_url: str, draft_id: str) -> dict[str, Any]:
    admin = base_url.removesuffix("/v1")
    async with ClientSession() as session, session.get(f"{admin}/_sim/drafts/{draft_id}") as r:
        return dict(await r.json())


# --- soak support: duplicates, MTA-style retries, slow answers, timestamps -----------


async def test_duplicated_mail_and_delivery_times(dovecot: Dovecot) -> None:
    """mail_duplicates APPENDs the genuine e-mail again (same Message-ID); each APPEND is timed."""
    target = MailTarget(dovecot.host, dovecot.port, dovecot.user, dovecot.password, "none")
    sim, server = await serve_with_mailbox(target)
    try:
        async with TestClient(server) as client:
            sim.script("dup", Script(mail_duplicates=2, decoy=True))
            await post(client, PUBLISH.format("dup"), {"account_id": ACCOUNT})
            await sim.wait_for_mail()
            mails = await (await client.get("/_sim/mails")).json()
    finally:
        await server.close()
    decoy, genuine = mails
    assert [m["Message-ID"] for m in read_inbox(dovecot)] == [decoy["message_id"]] + [
        genuine["message_id"]
    ] * 3
    assert len(decoy["delivered_at"]) == 1
    assert len(genuine["delivered_at"]) == 3
    assert genuine["type"] == "OTP"
    assert genuine["issued_at"] <= genuine["delivered_at"][0] <= genuine["delivered_at"][2]


async def test_mail_retried_while_the_server_is_down(dovecot: Dovecot) -> None:
    """mail_retry keeps trying a failed APPEND, as an MTA's queue does, until the server is back."""
    target = MailTarget(dovecot.host, dovecot.port, dovecot.user, dovecot.password, "none")
    sim, server = await serve_with_mailbox(target)
    dovecot.kill()
    try:
        async with TestClient(server) as client:
            sim.script("queued", Script(mail_retry=60))
            await post(client, PUBLISH.format("queued"), {"account_id": ACCOUNT})
            message_id = sim.mails[0][1].message_id
            async with asyncio.timeout(30):
                while not sim.mail_record(message_id)["failed_appends"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # a background thread's record: polled, bounded
            dovecot.start()
            await sim.wait_for_mail()
    finally:
        await server.close()
    assert sim.delivery_errors == []
    assert len(sim.mail_record(message_id)["delivered_at"]) == 1
    (message,) = read_inbox(dovecot)
    assert message["Message-ID"] == message_id


async def test_slow_answers_and_request_times(http: tuple[Simulator, TestClient[Any, Any]]) -> None:
    """slow_answers delays real answers (processed, not faults); requests carry receipt times."""
    sim, client = http
    sim.script("slow", Script(checkpoints=(), slow_answers=1, slow_delay=0.3))
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await post(client, PUBLISH.format("slow"), {"account_id": ACCOUNT})
    assert (status, body["object"]) == (200, "LinkedinJobPostingPublished")
    assert loop.time() - started >= 0.3
    assert sim.draft("slow")["slow_answers"] == 0
    requests = await (await client.get("/_sim/requests")).json()
    assert requests[0]["outcome"] == "answered"
    assert requests[0]["at"] <= datetime.now(UTC).timestamp()


async def test_late_mail_lands_after_the_next_one(dovecot: Dovecot) -> None:
    """late_mails holds the next checkpoint's e-mail back by late_delay; later ones are prompt."""
    target = MailTarget(dovecot.host, dovecot.port, dovecot.user, dovecot.password, "none")
    sim, server = await serve_with_mailbox(target)
    try:
        async with TestClient(server) as client:
            sim.script("late", Script(late_mails=1, late_delay=1.0))
            await post(client, PUBLISH.format("late"), {"account_id": ACCOUNT})
            await post(client, PUBLISH.format("late"), {"account_id": ACCOUNT})  # publish again
            await sim.wait_for_mail()
    finally:
        await server.close()
    first, second = (mail.message_id for _, mail in sim.mails)
    assert [m["Message-ID"] for m in read_inbox(dovecot)] == [second, first]
    assert sim.draft("late")["late_mails"] == 0
