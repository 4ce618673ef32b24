"""End to end: Dovecot + ``otp-bot simulate`` + the real daemon process.

Chained checkpoints, expired links, rejected inputs, spoofs, stale mail and a
mailbox server restart, each driven through the control API.
"""

from __future__ import annotations

import imaplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from otp_bot.mail.extract import extract
from otp_bot.sim.linkedin_mail import compose
from tests.harness import Daemon, Simulator, Stack, running_stack

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "bot@example.test"


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh Dovecot, simulator and daemon per test (its logs are printed on failure)."""
    with running_stack([USER]) as stack:
        yield stack


def start(stack: Stack, **settings: str) -> tuple[Simulator, Daemon]:
    return stack.start_account("acc_e2e", USER, **settings)


def inputs(sim: Simulator, draft_id: str) -> list[tuple[str, str]]:
    """(input, Idempotency-Key) of every checkpoint request for the draft."""
    return [
        (r["body"]["input"], r["idempotency_key"])
        for r in sim.requests(draft_id, "checkpoint")
        if isinstance(r["body"], dict)
    ]


def assert_no_input_reused(sim: Simulator, draft_id: str) -> None:
    """Each input travelled under one Idempotency-Key only (retries reuse it)."""
    keys: dict[str, set[str]] = {}
    for value, key in inputs(sim, draft_id):
        keys.setdefault(value, set()).add(key)
    assert all(len(k) == 1 for k in keys.values()), keys


def logged(daemon: Daemon, event: str, message_id: str) -> bool:
    """The daemon wrote ``event`` about the e-mail with this Message-ID."""
    wanted = message_id.strip("<>")
    return any(
        line.get("event") == event and str(line.get("message_id", "")).strip("<>") == wanted
        for line in daemon.lines()
    )


def publish_and_wait(daemon: Daemon, draft_id: str, timeout: float = 30) -> dict[str, Any]:
    daemon.client.publish(draft_id)
    return daemon.wait_state(draft_id, "published", "failed", timeout=timeout)


def test_plain_otp_is_published(stack: Stack) -> None:
    """A publish that meets an OTP checkpoint ends published with the mailed code."""
    sim, daemon = start(stack)
    sim.script("d-otp", checkpoints=["OTP"])
    draft = publish_and_wait(daemon, "d-otp")
    assert draft["state"] == "published", draft
    genuine = [m["code"] for m in sim.mails("d-otp") if m["genuine"]]
    assert [value for value, _ in inputs(sim, "d-otp")] == genuine


def test_chained_checkpoints(stack: Stack) -> None:
    """EMAIL_VERIFICATION answered by another checkpoint (OTP) is solved in turn."""
    sim, daemon = start(stack)
    sim.script("d-chain", checkpoints=["EMAIL_VERIFICATION", "OTP"])
    draft = publish_and_wait(daemon, "d-chain")
    assert draft["state"] == "published", draft
    mails = sim.mails("d-chain")
    assert len(mails) == 2
    sent = [value for value, _ in inputs(sim, "d-chain")]
    assert sent == [mails[0]["link"], mails[1]["code"]]
    assert len(sim.requests("d-chain", "publish")) == 1


def test_expired_link_publishes_again(stack: Stack) -> None:
    """401 expired_link: publish again under a new key, then use the new e-mail's input."""
    sim, daemon = start(stack)
    sim.script("d-expired", checkpoints=["EMAIL_VERIFICATION"], expired_links=1, accept=["link"])
    draft = publish_and_wait(daemon, "d-expired")
    assert draft["state"] == "published", draft
    assert draft["republishes"] == 1
    publishes = sim.requests("d-expired", "publish")
    assert len({r["idempotency_key"] for r in publishes}) == 2
    first, second = sim.mails("d-expired")
    # Nothing from the first e-mail (its PIN included) is tried for the new checkpoint.
    assert [value for value, _ in inputs(sim, "d-expired")] == [first["link"], second["link"]]
    assert_no_input_reused(sim, "d-expired")


def test_invalid_solution_then_fresh_code(stack: Stack) -> None:
    """401 invalid_checkpoint_solution burns the code; a fresh e-mail's code is used next."""
    sim, daemon = start(stack, OTP_BOT_CODE_TIMEOUT="3")
    sim.script("d-invalid", checkpoints=["OTP"], invalid_solutions=1)
    draft = publish_and_wait(daemon, "d-invalid")
    assert draft["state"] == "published", draft
    codes = [m["code"] for m in sim.mails("d-invalid")]
    sent = [value for value, _ in inputs(sim, "d-invalid")]
    assert len(codes) == 2
    assert sent == codes  # the burnt code was never sent again
    assert_no_input_reused(sim, "d-invalid")


def test_refused_link_then_the_pin_of_the_same_mail(stack: Stack) -> None:
    """401 invalid_checkpoint_solution for the link: the same e-mail's PIN is tried next."""
    sim, daemon = start(stack)
    sim.script("d-form", checkpoints=["EMAIL_VERIFICATION"], accept=["pin"])
    draft = publish_and_wait(daemon, "d-form")
    assert draft["state"] == "published", draft
    [mail] = sim.mails("d-form")  # no second e-mail was needed
    assert [value for value, _ in inputs(sim, "d-form")] == [mail["link"], mail["code"]]
    assert_no_input_reused(sim, "d-form")


def test_decoy_before_genuine_mail_is_ignored(stack: Stack) -> None:
    """A spoofed LinkedIn e-mail that arrives first is never submitted."""
    sim, daemon = start(stack)
    sim.script("d-decoy", checkpoints=["OTP"], decoy=True)
    draft = publish_and_wait(daemon, "d-decoy")
    assert draft["state"] == "published", draft
    mails = sim.mails("d-decoy")
    decoys = {m["code"] for m in mails if not m["genuine"]}
    assert decoys
    for mail in mails:
        if not mail["genuine"]:
            assert logged(daemon, "mail_rejected", mail["message_id"])  # read, and refused
    sent = {value for value, _ in inputs(sim, "d-decoy")}
    assert sent
    assert not sent & decoys


def test_member_message_with_a_code_before_genuine_mail_is_never_submitted(stack: Stack) -> None:
    """A signed LinkedIn message notification (DKIM and DMARC pass) carrying a code arrives
    first, then the genuine mail: only the genuine code is ever submitted."""
    sim, daemon = start(stack)
    sim.script("d-member", checkpoints=["OTP"], decoy=True, decoy_style="member")
    draft = publish_and_wait(daemon, "d-member")
    assert draft["state"] == "published", draft
    mails = sim.mails("d-member")
    [member] = [m for m in mails if not m["genuine"]]
    [genuine] = [m for m in mails if m["genuine"]]
    assert member["delivered_at"][0] <= genuine["delivered_at"][0]  # the member's came first
    rejected = [
        line
        for line in daemon.lines()
        if line.get("event") == "mail_rejected"
        and str(line.get("message_id", "")).strip("<>") == member["message_id"].strip("<>")
    ]
    assert rejected, "the member's message was never read"
    assert rejected[0]["reason"].startswith("not_a_verification_mail: sender messages-noreply@")
    assert [value for value, _ in inputs(sim, "d-member")] == [genuine["code"]]


def test_stale_mail_from_before_the_checkpoint_is_ignored(stack: Stack) -> None:
    """A genuine-looking code received an hour before the checkpoint is not used for it."""
    sim, daemon = start(stack)
    sim.script("d-stale", checkpoints=["OTP"], mail_delay=2.0)
    daemon.client.publish("d-stale")
    daemon.wait_state("d-stale", "awaiting_code")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    stale = compose("OTP", USER, an_hour_ago, authserv_id="mx.example.test")
    assert extract(stale.raw).trusted  # only its age may disqualify it
    assert stack.dovecot is not None
    conn = stack.dovecot.client()
    try:
        when = imaplib.Time2Internaldate(an_hour_ago.timestamp())
        assert conn.append("INBOX", "", when, stale.raw)[0] == "OK"
    finally:
        conn.logout()
    draft = daemon.wait_state("d-stale", "published", "failed")
    assert draft["state"] == "published", draft
    assert logged(daemon, "mail_handled", stale.message_id)  # read, trusted ...
    assert stale.code not in {value for value, _ in inputs(sim, "d-stale")}  # ... and not used


def test_dovecot_restart_while_awaiting(stack: Stack) -> None:
    """The IMAP server restarts while a draft waits; the mail that follows is still used."""
    sim, daemon = start(stack)
    sim.script("d-restart", checkpoints=["OTP"], mail_delay=3.0)
    daemon.client.publish("d-restart")
    daemon.wait_state("d-restart", "awaiting_code")
    assert stack.dovecot is not None
    stack.dovecot.restart()
    started = time.monotonic()
    draft = daemon.wait_state("d-restart", "published", "failed")
    assert draft["state"] == "published", draft
    assert time.monotonic() - started < 30
    assert len(sim.requests("d-restart", "publish")) == 1
