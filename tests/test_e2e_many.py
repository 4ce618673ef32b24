"""End to end: many accounts, one team.

Accounts that share one mailbox (each with its own OTP_BOT_MAIL_RECIPIENTS)
submit only their own codes, in one daemon or in several; a second daemon on
one state directory is refused.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests import dovecot as dc
from tests.harness import Daemon, Simulator, Stack, running_stack, wait_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "team@example.test"


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh Dovecot with one shared mailbox; simulators and daemons added per test."""
    with running_stack([USER]) as stack:
        yield stack


def test_second_daemon_on_one_state_directory_exits_2_naming_the_first(stack: Stack) -> None:
    """A second daemon on the same env file (same state directory) exits 2 with the holder's
    PID on stderr, and the first one keeps publishing."""
    sim, first = stack.start_account("acc_one", USER)
    second = stack.daemon("acc_one")
    second.start()
    assert second.wait(timeout=30) == 2
    assert first.popen is not None
    assert f"PID {first.popen.pid}" in second.log.read_text(), second.tail()
    assert first.running
    sim.script("d-after-refusal", checkpoints=["OTP"])
    first.client.publish("d-after-refusal")
    assert first.wait_state("d-after-refusal", "published", "failed")["state"] == "published"


def assert_only_own_codes(sim: Simulator, draft_id: str) -> None:
    """Every input the draft's simulator received came from its own e-mails, once each."""
    own = {m["code"] for m in sim.mails(draft_id)} | {m["link"] for m in sim.mails(draft_id)}
    inputs = [r["body"]["input"] for r in sim.requests(draft_id, "checkpoint")]
    assert inputs, "nothing was submitted"
    assert set(inputs) <= own, (inputs, own)
    assert [r["outcome"] for r in sim.requests(draft_id, "checkpoint")].count("rejected") == 0


def events(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    return [line for line in daemon.lines() if line.get("event") == name]


def test_two_accounts_on_one_mailbox_each_submit_only_their_own_code(stack: Stack) -> None:
    """Two accounts in one daemon read one mailbox over ONE connection; both wait at once and
    each submits only the code addressed to it."""
    addr = f"127.0.0.1:{dc.free_port()}"
    sims = {
        name: stack.add_account(
            f"acc_{name}",
            USER,
            control_addr=addr,
            OTP_BOT_MAIL_RECIPIENTS=f"{name}@team.example",
            # One state database: one mailbox connection serves both accounts.
            OTP_BOT_STATE_DIR=str(stack.root / "state-shared"),
        ).simulator
        for name in ("a", "b")
    }
    daemon = stack.daemon("acc_a", "acc_b")
    daemon.start_ready()
    for name, sim in sims.items():  # the mail comes only once both drafts wait
        sim.script(f"d-{name}", checkpoints=["OTP"], mail_delay=5.0)
        daemon.client.publish(f"d-{name}", account_id=f"acc_{name}")

    def both_waiting() -> bool:
        states = {daemon.draft(f"d-{n}", f"acc_{n}")["state"] for n in sims}
        return states == {"awaiting_code"}

    wait_until("both drafts awaiting their code at once", both_waiting, 30, daemon.tail())
    for name, sim in sims.items():
        draft = daemon.wait_state(f"d-{name}", "published", "failed", account_id=f"acc_{name}")
        assert draft["state"] == "published", draft
        assert_only_own_codes(sim, f"d-{name}")
        assert len(sim.requests(f"d-{name}", "checkpoint")) == 1
    assert len(events(daemon, "mailbox_connected")) == 1
    handled = {line["account_id"] for line in events(daemon, "mail_handled")}
    assert handled == {"acc_a", "acc_b"}


def test_two_daemons_on_one_mailbox_leave_each_others_mail_alone(stack: Stack) -> None:
    """Two daemons (own state, own recipients) on one mailbox with OTP_BOT_MAIL_AFTER_USE=move:
    each submits its own code, moves only its own e-mail and leaves the other's alone."""
    daemons = {}
    for name in ("a", "b"):
        stack.add_account(
            f"acc_{name}",
            USER,
            OTP_BOT_MAIL_RECIPIENTS=f"{name}@team.example",
            OTP_BOT_STATE_DIR=str(stack.root / f"state-{name}"),
            OTP_BOT_MAIL_AFTER_USE="move",
        )
        daemons[name] = stack.daemon(f"acc_{name}")
        daemons[name].start_ready()
    for name, daemon in daemons.items():
        stack.accounts[f"acc_{name}"].simulator.script(f"d-{name}", checkpoints=["OTP"])
        daemon.client.publish(f"d-{name}")
    for name, daemon in daemons.items():
        assert daemon.wait_state(f"d-{name}", "published", "failed")["state"] == "published"
        assert_only_own_codes(stack.accounts[f"acc_{name}"].simulator, f"d-{name}")
    for name, daemon in daemons.items():
        # The move runs after the submit, beside the worker: wait for its log line.
        wait_until("the used e-mail moved", lambda d=daemon: events(d, "mailbox_after_use"), 20)
        moved = {line["uid"] for line in events(daemon, "mailbox_after_use")}
        handled = {line["uid"] for line in events(daemon, "mail_handled")}
        assert moved == handled, (moved, handled)
        assert len(moved) == 1
        other = daemons["b" if name == "a" else "a"]
        assert not moved & {line["uid"] for line in events(other, "mail_handled")}
        assert not moved & {line["uid"] for line in events(other, "mailbox_after_use")}


SOLO = "solo@example.test"


def hup(daemon: Daemon, count: int) -> dict[str, Any]:
    """SIGHUP, then the ``count``-th reload_done line (the daemon keeps running)."""
    daemon.signal(signal.SIGHUP)
    wait_until(f"reload {count}", lambda: len(events(daemon, "reload_done")) >= count, 30,
               daemon.tail())  # fmt: skip
    return events(daemon, "reload_done")[count - 1]


def test_sighup_adds_removes_and_changes_accounts_mid_flight(stack: Stack) -> None:
    """--env-dir and SIGHUP with drafts in every state: a removed account stops after its
    publish in flight (nothing lost), a new one joins the shared mailbox's connection, a
    changed one restarts, a bad file is skipped; all drafts end published or failed as
    scripted, each input once and only its own account's."""
    assert stack.dovecot is not None
    stack.dovecot.cleanup()  # this test needs a second mailbox
    stack.start_dovecot([USER, SOLO])
    addr = f"127.0.0.1:{dc.free_port()}"
    team = {"control_addr": addr, "OTP_BOT_STATE_DIR": str(stack.root / "state-team")}
    a = stack.add_account("acc_a", USER, **team, OTP_BOT_MAIL_RECIPIENTS="a@team.example")
    b = stack.add_account("acc_b", USER, **team, OTP_BOT_MAIL_RECIPIENTS="b@team.example")
    c = stack.add_account("acc_c", SOLO, **team)
    accounts = stack.root / "accounts"
    accounts.mkdir()
    shutil.copy(a.env_file, accounts / "a.env")
    shutil.copy(c.env_file, accounts / "c.env")
    daemon = stack.daemon("acc_a", env_dir=accounts)
    daemon.start_ready()
    # acc_c, to be removed: one published, one failed, one publishing (slow answer), one queued.
    c.simulator.script("c-done", checkpoints=[])
    c.simulator.script("c-fail", faults=[{"type": "errors/resource_not_found"}])
    for draft_id in ("c-done", "c-fail"):
        daemon.client.publish(draft_id, account_id="acc_c")
        daemon.wait_state(draft_id, "published", "failed", account_id="acc_c")
    c.simulator.script(
        "c-wait", checkpoints=["OTP"], slow_answers=1, slow_delay=2.0
    )  # < API timeout
    c.simulator.script("c-queued", checkpoints=["OTP"])
    daemon.client.publish("c-wait", account_id="acc_c")
    daemon.client.publish("c-queued", account_id="acc_c")
    a.simulator.script("a-wait", checkpoints=["OTP"], mail_delay=6.0)
    daemon.client.publish("a-wait", account_id="acc_a")
    daemon.wait_state("c-wait", "publishing", account_id="acc_c")
    daemon.wait_state("a-wait", "awaiting_code", account_id="acc_a")
    shutil.copy(b.env_file, accounts / "b.env")
    (accounts / "c.env").unlink()
    (accounts / "bad.env").write_text("OTP_BOT_ACCOUNT_ID=acc_bad\n")
    first = hup(daemon, 1)
    assert (first["added"], first["removed"], first["kept"]) == (["acc_b"], ["acc_c"], ["acc_a"])
    assert [e["source"] for e in events(daemon, "reload_file_skipped")] == [
        str(accounts / "bad.env")
    ]
    # The publish in flight finished (one request, answered) before acc_c stopped.
    assert [r["outcome"] for r in c.simulator.requests("c-wait", "publish")] == ["answered"]
    b.simulator.script("b-1", checkpoints=["OTP"])
    daemon.client.publish("b-1", account_id="acc_b")
    for draft_id, account_id in (("b-1", "acc_b"), ("a-wait", "acc_a")):
        assert (
            daemon.wait_state(draft_id, "published", "failed", account_id=account_id)["state"]
            == "published"
        )
    # Second reload: acc_c comes back, acc_b changes (restarts), the bad file is gone.
    shutil.copy(c.env_file, accounts / "c.env")
    b.env_with(accounts / "b.env", OTP_BOT_REPUBLISH_LIMIT="3")
    (accounts / "bad.env").unlink()
    second = hup(daemon, 2)
    assert (second["added"], second["changed"], second["kept"]) == (["acc_c"], ["acc_b"], ["acc_a"])
    # The operator endpoints follow the reload too (acc_b is known; nothing of it failed).
    assert daemon.client.retry_failed(account_id="acc_b")["count"] == 0
    b.simulator.script("b-2", checkpoints=["OTP"])
    daemon.client.publish("b-2", account_id="acc_b")
    final = {"c-done": "published", "c-fail": "failed", "c-wait": "published",
             "c-queued": "published", "b-2": "published"}  # fmt: skip
    for draft_id, state in final.items():
        account_id = f"acc_{draft_id[0]}"
        assert (
            daemon.wait_state(draft_id, "published", "failed", account_id=account_id)["state"]
            == state
        ), draft_id
    for sim, draft_ids in ((a.simulator, ["a-wait"]), (b.simulator, ["b-1", "b-2"]),
                           (c.simulator, ["c-wait", "c-queued"])):  # fmt: skip
        for draft_id in draft_ids:
            assert_only_own_codes(sim, draft_id)
            assert len(sim.requests(draft_id, "checkpoint")) == 1
    assert daemon.running
    # The shared mailbox kept its one connection through both reloads; acc_c's own
    # mailbox was connected at start and again when the account came back.
    connected = events(daemon, "mailbox_connected")
    assert sum(e.get("account_id") == "acc_a" for e in connected) == 1, connected
    assert not any(e.get("account_id") == "acc_b" for e in connected), connected
    assert sum(e.get("account_id") == "acc_c" for e in connected) == 2, connected
