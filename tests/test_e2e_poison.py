"""End to end: poison mail never stops the daemon (Dovecot + simulator + the real daemon).

A message the reader cannot read lands first; a genuine code mail follows; the
draft is published and ``/healthz`` stays healthy, also across a SIGKILL and
restart between the two mails, and the poison is never read again.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Daemon, Simulator, Stack, running_stack, wait_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "bot@example.test"
# Deeply nested comments in From: the stdlib address parser raised RecursionError
# in the pre-filter (the case that crash-looped the daemon); now refused by the
# From nesting cap before parsing.
NESTED_FROM = (
    b"From: " + b"(" * 600 + b"LinkedIn <security-noreply@linkedin.com>\r\n"
    b"Subject: Your verification code\r\nMessage-ID: <poison-1@example.test>\r\n\r\nhi\r\n"
)
# A long dash run from linkedin.com, read in the reader process (the forward
# check runs for any sender); no Authentication-Results, so it is rejected.
DASHES = (
    b"From: LinkedIn <security-noreply@linkedin.com>\r\nSubject: Your verification code\r\n"
    b"Message-ID: <poison-2@linkedin.com>\r\nContent-Type: text/plain\r\n\r\n"
    + b"-" * 200_000
    + b"\r\n"
)
NEWSLETTER = (
    b"From: News <news@example.net>\r\nSubject: weekly\r\nMessage-ID: <n-1@example.net>\r\n"
    b"\r\nhello\r\n"
)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with running_stack([USER]) as stack:
        yield stack


def start(stack: Stack) -> tuple[Simulator, Daemon]:
    return stack.start_account("acc_poison", USER)


def healthz(daemon: Daemon) -> int:
    return daemon.client.health().status


def metrics_text(daemon: Daemon) -> str:
    url = f"http://{daemon.client.where}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def events(daemon: Daemon, event: str, since: int = 0) -> list[dict[str, Any]]:
    return [line for line in daemon.lines()[since:] if line.get("event") == event]


def uids_read(daemon: Daemon, since: int = 0) -> list[int]:
    return [int(line["uid"]) for line in events(daemon, "mailbox_message", since)]


def poison(stack: Stack, daemon: Daemon) -> list[int]:
    """Append the poison messages and wait until each was handled (unreadable or rejected)."""
    assert stack.dovecot is not None
    uids = [stack.dovecot.append(raw) for raw in (NESTED_FROM, DASHES)]
    wait_until(
        "the poison to be handled",
        lambda: {int(line["uid"]) for line in events(daemon, "mail_rejected")} >= set(uids),
        30,
        daemon.tail(),
    )
    return uids


def test_poison_then_genuine_mail_is_published_and_healthy(stack: Stack) -> None:
    """After poison mail, a genuine code mail is used; health stays 200; the poison is counted."""
    sim, daemon = start(stack)
    uids = poison(stack, daemon)
    rejected = {int(r["uid"]): r["reason"] for r in events(daemon, "mail_rejected")}
    assert rejected[uids[1]] == "no_authentication_results"
    assert healthz(daemon) == 200
    sim.script("d-after-poison", checkpoints=["OTP"])
    daemon.client.publish("d-after-poison")
    draft = daemon.wait_state("d-after-poison", "published", "failed")
    assert draft["state"] == "published", draft
    assert healthz(daemon) == 200
    assert events(daemon, "account_task_crashed") == []
    assert events(daemon, "mailbox_handler_failed") == []
    metrics = metrics_text(daemon)
    assert 'otp_bot_emails_total{account="acc_poison",result="rejected"} 2.0' in metrics


def test_sigkill_between_poison_and_genuine_mail(stack: Stack) -> None:
    """Killed after the poison was handled: the restart never reads it again; the draft is
    published and health stays 200."""
    sim, daemon = start(stack)
    uids = poison(stack, daemon)
    assert stack.dovecot is not None
    marker = stack.dovecot.append(NEWSLETTER)  # handled after the poison's record is written
    wait_until("the newsletter", lambda: marker in uids_read(daemon), 30, daemon.tail())
    daemon.kill()
    before = len(daemon.lines())
    daemon.start_ready()
    sim.script("d-after-kill", checkpoints=["OTP"])
    daemon.client.publish("d-after-kill")
    draft = daemon.wait_state("d-after-kill", "published", "failed")
    assert draft["state"] == "published", draft
    assert not set(uids) & set(uids_read(daemon, before)), "a poison message was read again"
    assert events(daemon, "mail_unreadable", before) == []
    assert healthz(daemon) == 200
