"""End to end: the daemon's life. SIGKILL at each stage, SIGTERM, two accounts.

After a SIGKILL the daemon is started again on the same state directory; the
simulator's request log then shows that no draft was lost and that no input
was sent under two different Idempotency-Keys.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests import dovecot as dc
from tests.harness import Daemon, Simulator, Stack, running_stack, wait_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "bot@example.test"
OTHER = "other@example.test"
# SIGTERM must end the daemon within 3 s (the bound), state saved.
STOP_BOUND = 3.0


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh Dovecot with two mailboxes; simulators and daemons added per test."""
    with running_stack([USER, OTHER]) as stack:
        yield stack


def start(stack: Stack, **settings: str) -> tuple[Simulator, Daemon]:
    return stack.start_account("acc_life", USER, **settings)


def restart_after_kill(daemon: Daemon) -> None:
    daemon.kill()
    daemon.start_ready()


def exit_code_after(daemon: Daemon, sig: signal.Signals) -> int:
    """Send ``sig``; the exit code, or the test fails when the daemon outlives STOP_BOUND."""
    daemon.signal(sig)
    try:
        return daemon.wait(timeout=STOP_BOUND)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the daemon did not stop within {STOP_BOUND} s\n{daemon.tail()}")


def assert_each_input_sent_under_one_key(sim: Simulator, draft_id: str) -> list[str]:
    keys: dict[str, set[str]] = {}
    for request in sim.requests(draft_id, "checkpoint"):
        keys.setdefault(request["body"]["input"], set()).add(request["idempotency_key"])
    assert all(len(k) == 1 for k in keys.values()), keys
    return list(keys)


def test_sigkill_while_awaiting_code(stack: Stack) -> None:
    """Killed while awaiting the e-mail: after a restart the draft waits on and is published."""
    sim, daemon = start(stack)
    sim.script("d-kill-await", checkpoints=["OTP"], mail_delay=2.0)
    daemon.client.publish("d-kill-await")
    before = daemon.wait_state("d-kill-await", "awaiting_code")
    restart_after_kill(daemon)
    assert daemon.draft("d-kill-await")["since"] == before["since"]
    draft = daemon.wait_state("d-kill-await", "published", "failed")
    assert draft["state"] == "published", draft
    assert len(sim.requests("d-kill-await", "publish")) == 1  # resumed, not published again
    sent = assert_each_input_sent_under_one_key(sim, "d-kill-await")
    assert sent == [sim.mails("d-kill-await")[0]["code"]]


def test_sigkill_after_extraction_before_the_answer(stack: Stack) -> None:
    """Killed with the input chosen and its request in flight: the same input, same key, again."""
    sim, daemon = start(stack)
    held = {"type": "errors/service_unavailable", "endpoint": "checkpoint", "delay": 3.0}
    sim.script("d-kill-submit", checkpoints=["OTP"], faults=[held])
    daemon.client.publish("d-kill-submit")
    daemon.wait_state("d-kill-submit", "submitting")
    wait_until(
        "the submission to reach the simulator",
        lambda: sim.requests("d-kill-submit", "checkpoint"),
        10,
    )
    restart_after_kill(daemon)
    draft = daemon.wait_state("d-kill-submit", "published", "failed")
    assert draft["state"] == "published", draft
    requests = sim.requests("d-kill-submit", "checkpoint")
    assert len(requests) >= 2
    assert len({r["idempotency_key"] for r in requests}) == 1
    assert len(assert_each_input_sent_under_one_key(sim, "d-kill-submit")) == 1


def test_sigkill_after_submit_before_commit(stack: Stack) -> None:
    """Killed after postpress accepted the input but before the bot stored the answer."""
    sim, daemon = start(stack)
    sim.script(
        "d-kill-commit", checkpoints=["OTP"], timeout_after_accept=1, timeout_endpoint="checkpoint"
    )
    daemon.client.publish("d-kill-commit")
    wait_until(
        "postpress to accept the input (answered 504)",
        lambda: any(
            r["outcome"] == "timeout_after_accept"
            for r in sim.requests("d-kill-commit", "checkpoint")
        ),
        20,
        daemon.tail(),
    )
    assert daemon.draft("d-kill-commit")["state"] == "submitting"  # answer not yet stored
    restart_after_kill(daemon)
    draft = daemon.wait_state("d-kill-commit", "published", "failed")
    assert draft["state"] == "published", draft
    outcomes = [r["outcome"] for r in sim.requests("d-kill-commit", "checkpoint")]
    assert outcomes[0] == "timeout_after_accept"
    assert set(outcomes[1:]) == {"replayed"}  # postpress answered from its record, once done
    assert len(assert_each_input_sent_under_one_key(sim, "d-kill-commit")) == 1


def test_sigkill_with_queued_drafts_loses_none(stack: Stack) -> None:
    """Drafts queued behind one in progress all survive a SIGKILL and are published."""
    sim, daemon = start(stack)
    drafts = ["d-q1", "d-q2", "d-q3"]
    sim.script("d-q1", checkpoints=["OTP"], mail_delay=1.0)
    for draft_id in drafts:
        daemon.client.publish(draft_id)
    daemon.wait_state("d-q1", "awaiting_code")
    restart_after_kill(daemon)
    assert {d["draft_id"] for d in daemon.client.drafts()} == set(drafts)
    for draft_id in drafts:
        assert daemon.wait_state(draft_id, "published", "failed")["state"] == "published"
        assert_each_input_sent_under_one_key(sim, draft_id)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_within_bound_with_state_saved(stack: Stack, sig: signal.Signals) -> None:
    """SIGTERM/SIGINT while a draft waits: STOPPING=1, exit 0 within 3 s, the draft resumes."""
    sim, daemon = start(stack)
    sim.script("d-term", checkpoints=["OTP"], mail=False)
    daemon.client.publish("d-term")
    before = daemon.wait_state("d-term", "awaiting_code")
    started = time.monotonic()
    code = exit_code_after(daemon, sig)
    elapsed = time.monotonic() - started
    assert code == 0, daemon.tail()
    daemon.wait_notified("STOPPING=1", timeout=1)
    events = [line.get("event") for line in daemon.lines()]
    assert "daemon_stopped" in events
    daemon.start_ready()
    after = daemon.draft("d-term")
    assert (after["state"], after["since"]) == ("awaiting_code", before["since"])
    print(f"stopped in {elapsed:.2f} s")


def test_two_accounts_one_broken(stack: Stack) -> None:
    """Two accounts in one process share a control API; one with a refused IMAP login
    is reported unhealthy while the other publishes."""
    addr = f"127.0.0.1:{dc.free_port()}"
    good = stack.add_account("acc_good", USER, control_addr=addr)
    stack.add_account("acc_broken", OTHER, control_addr=addr, password="wrong-password")
    daemon = stack.daemon("acc_good", "acc_broken")
    daemon.start_ready()  # READY although one mailbox cannot be watched
    status = daemon.wait_notified("READY=1")
    assert "auth_failed" in status
    refused = daemon.client.call("POST", "/drafts", {"draft_id": "d-which"})
    assert refused.status == 400
    assert "account_id" in refused.body["error"]
    good.simulator.script("d-good", checkpoints=["OTP"])
    draft = daemon.client.publish("d-good", account_id="acc_good")
    assert draft["account_id"] == "acc_good"
    published = daemon.wait_state("d-good", "published", "failed", account_id="acc_good")
    assert published["state"] == "published", published
    health = daemon.client.health()
    assert health.status == 503
    by_id = {a["account_id"]: a for a in health.body["accounts"]}
    assert by_id["acc_good"]["healthy"]
    assert not by_id["acc_broken"]["healthy"]
    assert "IMAP login refused" in by_id["acc_broken"]["problem"]
    assert daemon.running


def test_second_sigint_forces_exit(stack: Stack) -> None:
    """A second SIGINT during a slow shutdown (mail server frozen) exits at once with 130."""
    _sim, daemon = start(stack)
    assert stack.dovecot is not None
    with stack.dovecot.frozen():  # our own Dovecot: its LOGOUT now never answers
        daemon.signal(signal.SIGINT)
        wait_until(
            "the daemon to begin stopping",
            lambda: any(line.get("event") == "daemon_stopping" for line in daemon.lines()),
            5,
        )
        daemon.signal(signal.SIGINT)
        code = daemon.wait(timeout=STOP_BOUND)
    assert code == 130, daemon.tail()
    assert any(line.get("event") == "forced_exit" for line in daemon.lines())


def test_sigterm_with_a_hung_mail_server_still_stops_in_time(stack: Stack) -> None:
    """The mail server stops answering mid-session: SIGTERM still ends the daemon within 3 s."""
    _sim, daemon = start(stack)
    assert stack.dovecot is not None
    with stack.dovecot.frozen():
        code = exit_code_after(daemon, signal.SIGTERM)
    assert code == 0, daemon.tail()


def test_sigterm_while_the_mail_server_has_not_greeted_stops_in_time(stack: Stack) -> None:
    """The mail server takes the connection and never greets, so the connect hangs inside
    imap-tools (up to OTP_BOT_IMAP_TIMEOUT, here 60 s): SIGTERM still ends the daemon
    within 3 s, as it does mid-session."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = str(silent.getsockname()[1])
        stack.add_account("acc_silent", USER, OTP_BOT_IMAP_PORT=port, OTP_BOT_IMAP_TIMEOUT="60")
        daemon = stack.daemon("acc_silent")
        daemon.start()
        silent.settimeout(30)
        conn, _ = silent.accept()  # the daemon's connect is under way
        with conn:
            code = exit_code_after(daemon, signal.SIGTERM)
    assert code == 0, daemon.tail()
