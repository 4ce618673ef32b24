"""The daemon's CLI commands as a user runs them: publish, status, health (check: test_check.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import dovecot as dc
from tests.harness import Account, Daemon, Stack, otp_bot, running_stack

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "bot@example.test"
LOCKED = "locked@example.test"
TOKEN = "cli-control-token-0123456789abcdef"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One Dovecot, an account with a token-protected daemon, and a locked-out account."""
    with running_stack([USER, LOCKED]) as stack:
        stack.add_account("acc_cli", USER, OTP_BOT_CONTROL_TOKEN=TOKEN)
        stack.daemon("acc_cli", token=TOKEN).start_ready()
        # A second daemon: a state directory of its own (one daemon per state directory).
        stack.add_account(
            "acc_locked",
            LOCKED,
            password="wrong-password",
            OTP_BOT_STATE_DIR=str(stack.root / "state-locked"),
        )
        stack.daemon("acc_locked").start_ready()
        yield stack


@pytest.fixture
def account(stack: Stack) -> Account:
    return stack.accounts["acc_cli"]


@pytest.fixture
def daemon(stack: Stack) -> Daemon:
    return stack.daemons[0]


def test_publish_prints_the_draft_and_returns_at_once(account: Account, daemon: Daemon) -> None:
    """`otp-bot publish` hands the draft over and prints it as one JSON object."""
    result = otp_bot("publish", "cli-plain", "--env-file", account.env_file)
    assert result.returncode == 0, result.stderr
    draft = json.loads(result.stdout)
    assert draft["draft_id"] == "cli-plain"
    assert draft["state"] in ("queued", "publishing", "awaiting_code")
    daemon.wait_state("cli-plain", "published")


def test_control_commands_need_no_api_or_imap_secret(
    account: Account, daemon: Daemon, tmp_path: Path
) -> None:
    """status and health work from an env file holding only the control address and token."""
    otp_bot("publish", "cli-nosecret", "--env-file", account.env_file)
    daemon.wait_state("cli-nosecret", "published")
    env = tmp_path / "control-only.env"
    env.write_text(f"OTP_BOT_CONTROL_ADDR={account.control_addr}\nOTP_BOT_CONTROL_TOKEN={TOKEN}\n")
    status = otp_bot("status", "--env-file", env, "--json", "cli-nosecret")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[0]["state"] == "published"
    assert otp_bot("health", "--env-file", env).returncode == 0


def test_status_json_is_an_array_with_the_documented_fields(account: Account,
                                                            daemon: Daemon) -> None:  # fmt: skip
    """`otp-bot status --json` prints a JSON array; each object has the design's fields."""
    otp_bot("publish", "cli-json", "--env-file", account.env_file)
    daemon.wait_state("cli-json", "published")
    result = otp_bot("status", "--env-file", account.env_file, "--json")
    assert result.returncode == 0, result.stderr
    drafts = json.loads(result.stdout)
    assert isinstance(drafts, list)
    mine = next(d for d in drafts if d["draft_id"] == "cli-json")
    for key in ("draft_id", "state", "job_id", "job_state", "checkpoint", "error", "updated_at"):
        assert key in mine
    assert (mine["state"], mine["error"]) == ("published", None)
    one = otp_bot("status", "cli-json", "--env-file", account.env_file, "--json")
    assert [d["draft_id"] for d in json.loads(one.stdout)] == ["cli-json"]


def test_status_table_is_readable(account: Account, daemon: Daemon) -> None:
    """`otp-bot status` without --json prints an aligned table with a header."""
    otp_bot("publish", "cli-table", "--env-file", account.env_file)
    daemon.wait_state("cli-table", "published")
    result = otp_bot("status", "--env-file", account.env_file)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:2] == ["DRAFT", "STATE"]
    row = next(r for r in rows if r.startswith("cli-table "))
    assert row.split()[1] == "published"


# Runs before the registered checkpoint below, whose unsolved draft then holds the
# account's checkpoint slot for the rest of this module.
def test_publish_retry_requeues_a_failed_draft(account: Account, daemon: Daemon) -> None:
    """`otp-bot publish --retry` queues a failed draft again; it then publishes."""
    otp_bot("publish", "cli-notfound", "--env-file", account.env_file)  # 404 once, then fine
    failed = daemon.wait_state("cli-notfound", "failed")
    assert failed["error"] == "errors/resource_not_found"
    result = otp_bot("publish", "cli-notfound", "--env-file", account.env_file, "--retry")
    assert result.returncode == 0, result.stderr
    retried = json.loads(result.stdout)
    assert (retried["error"], retried["created_at"]) == (None, failed["created_at"])
    assert retried["state"] in ("queued", "publishing", "awaiting_code")
    assert daemon.wait_state("cli-notfound", "published")["job_id"]


def test_operator_commands(account: Account, daemon: Daemon) -> None:
    """retry --failed, cancel, status --state/--since and resume, as an operator types them."""
    env = ("--env-file", account.env_file)
    otp_bot("publish", "cli-ops-notfound-direct", *env)  # 404 once, then published at once
    daemon.wait_state("cli-ops-notfound-direct", "failed")
    retry = otp_bot("retry", "--failed", "--error", "errors/resource_not_found", *env)
    assert retry.returncode == 0, retry.stderr
    assert "cli-ops-notfound-direct" in [d["draft_id"] for d in json.loads(retry.stdout)["retried"]]
    daemon.wait_state("cli-ops-notfound-direct", "published")
    otp_bot("publish", "cli-ops-nomail", *env)
    daemon.wait_state("cli-ops-nomail", "awaiting_code")
    cancel = otp_bot("cancel", "cli-ops-nomail", *env)
    assert cancel.returncode == 0, cancel.stderr
    assert json.loads(cancel.stdout)["state"] == "cancelled"
    assert otp_bot("cancel", "cli-ops-nomail", *env).returncode == 1  # already finished
    listed = otp_bot("status", "--state", "cancelled", "--since", "10m", "--json", *env)
    assert [d["draft_id"] for d in json.loads(listed.stdout)] == ["cli-ops-nomail"]
    bad = otp_bot("status", "--since", "yesterday-ish", *env)
    assert bad.returncode == 2
    assert "--since" in bad.stderr
    resume = otp_bot("resume", *env)
    assert resume.returncode == 0, resume.stderr
    assert json.loads(resume.stdout)["accounts"][0]["held"] is None


def test_publish_with_a_registered_checkpoint(account: Account, daemon: Daemon) -> None:
    """`otp-bot publish --checkpoint OTP` registers a checkpoint someone else received."""
    result = otp_bot("publish", "cli-reg", "--env-file", account.env_file, "--checkpoint", "OTP")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["checkpoint"] == "OTP"
    assert account.simulator.requests("cli-reg") == []


def test_status_of_an_unknown_draft_fails_clearly(account: Account) -> None:
    """An unknown DRAFT_ID: exit 1 and a one-line reason on stderr."""
    result = otp_bot("status", "no-such-draft", "--env-file", account.env_file)
    assert result.returncode == 1
    assert "no draft 'no-such-draft'" in result.stderr


def test_wrong_token_is_refused(account: Account, tmp_path: Path) -> None:
    """A CLI call with another token is refused by the daemon, and says so."""
    env = tmp_path / "wrong.env"
    text = account.env_file.read_text().replace(TOKEN, "not-the-token-at-all")
    env.write_text(text)
    result = otp_bot("status", "--env-file", env)
    assert result.returncode == 1
    assert "bearer token" in result.stderr
    assert "not-the-token-at-all" not in result.stderr


def test_health_of_a_healthy_daemon(account: Account) -> None:
    """`otp-bot health` exits 0 and says which mailboxes are watched."""
    result = otp_bot("health", "--env-file", account.env_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "healthy: acc_cli watching"


def test_health_of_an_unhealthy_daemon(stack: Stack) -> None:
    """An account whose IMAP login is refused: exit 1 and the reason on one line."""
    result = otp_bot("health", "--env-file", stack.accounts["acc_locked"].env_file)
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith("unhealthy: acc_locked: IMAP login refused")


def test_live_health_ignores_a_refused_login(stack: Stack, account: Account) -> None:
    """`otp-bot health --live` exits 0 for a refused login: a restart cannot fix a password."""
    result = otp_bot("health", "--live", "--env-file", stack.accounts["acc_locked"].env_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "alive: acc_locked auth_failed"
    result = otp_bot("health", "--live", "--env-file", account.env_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "alive: acc_cli watching"


def test_health_without_a_daemon(tmp_path: Path, account: Account) -> None:
    """No daemon on the control address: exit 1, saying nothing answers there."""
    port = dc.free_port()
    env = account.env_with(tmp_path / "nobody.env", OTP_BOT_CONTROL_ADDR=f"127.0.0.1:{port}")
    result = otp_bot("health", "--env-file", env)
    assert result.returncode == 1
    assert f"no otp-bot daemon answers on 127.0.0.1:{port}" in result.stderr


def test_bad_configuration_exits_2(tmp_path: Path) -> None:
    """A missing or bad variable: exit 2 and a message naming it (for every daemon command)."""
    env = tmp_path / "empty.env"
    env.write_text("OTP_BOT_API_KEY=pp_test_x\nOTP_BOT_CONTROL_TOKEN=secret-token-x\n")
    for command in ("run", "check"):
        result = otp_bot(command, "--env-file", env)
        assert result.returncode == 2, command
        assert "OTP_BOT_ACCOUNT_ID: is required" in result.stderr
        assert "pp_test_x" not in result.stderr
    # publish, status and health need only the control address (and token).
    env.write_text("OTP_BOT_CONTROL_ADDR=nohostport\nOTP_BOT_CONTROL_TOKEN=secret-token-x\n")
    for command in ("publish d1", "status", "health"):
        result = otp_bot(*command.split(), "--env-file", env)
        assert result.returncode == 2, command
        assert "OTP_BOT_CONTROL_ADDR" in result.stderr
        assert "secret-token-x" not in result.stderr
