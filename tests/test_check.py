"""`otp-bot check` proves a set-up without side effects: one line per check, a hint
under each failure, an exit code per class, --json; against Dovecot and the simulator."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otp_bot.config import MailAction
from otp_bot.daemon.check import EXIT_CLOCK, EXIT_MAILBOX, clock_line, mailbox_lines
from otp_bot.imap.probe import MailboxReport
from otp_bot.imap.server import Namespace
from otp_bot.imap.session import Session
from tests import dovecot as dc
from tests.harness import Account, Stack, otp_bot, running_stack
from tests.mailbox_helpers import linkedin_message, settings_for

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "check@example.test"
RUNNING = "running@example.test"
# The check lines, in the order they print.
NAMES = ["config", "control", "ca-file", "state", "api",
         "mailbox", "server", "trust", "dkim", "clock"]  # fmt: skip


def lines_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Check name -> its line (with the hint line below it, if any)."""
    found: dict[str, str] = {}
    name = ""
    for line in result.stdout.splitlines():
        if line.startswith(" "):
            found[name] += "\n" + line
        else:
            name = line.split()[0]
            found[name] = line
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Dovecot with one message per user; an account without a daemon, one with."""
    with running_stack([USER, RUNNING]) as stack:
        assert stack.dovecot is not None
        stack.dovecot.append(linkedin_message(), user=USER)  # the clock check reads its arrival
        stack.add_account("acc_chk", USER)
        stack.add_account("acc_run", RUNNING)
        stack.daemon("acc_run").start_ready()
        yield stack


@pytest.fixture
def account(stack: Stack) -> Account:
    return stack.accounts["acc_chk"]


def test_a_working_set_up_passes_every_check(account: Account) -> None:
    """Exit 0; one line per check in order, each "ok"; the clock measured by SEARCH YOUNGER."""
    result = otp_bot("check", "--env-file", account.env_file)
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines_of(result)
    assert list(found) == NAMES
    assert all(line.split()[1] == "ok:" for line in found.values()), result.stdout
    assert "key accepted, account acc_chk" in found["api"]
    assert "sources OK" in found["api"]
    assert "IDLE supported" in found["mailbox"]
    assert "MOVE yes, UIDPLUS yes" in found["server"]
    assert "the mail server's clock is" in found["clock"]
    assert "(OTP_BOT_CLOCK_SKEW allows 120 s)" in found["clock"]


def test_json_is_one_object(account: Account) -> None:
    """--json: exactly one JSON object, ok, exit_code and a record per check."""
    result = otp_bot("check", "--json", "--env-file", account.env_file)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["exit_code"] == 0
    assert [c["name"] for c in report["checks"]] == NAMES
    assert set(report["checks"][0]) == {"name", "status", "detail", "hint", "exit_code"}


def test_wrong_api_key_is_refused_by_the_api(account: Account, tmp_path: Path) -> None:
    """A wrong key: exit 4, the api line says refused, the hint names OTP_BOT_API_KEY."""
    env = account.env_with(tmp_path / "k.env", OTP_BOT_API_KEY="pp_test_wrong_key_42")
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 4, result.stdout
    api = lines_of(result)["api"]
    assert api.startswith("api      FAILED: refused:")
    assert "hint: check OTP_BOT_API_KEY" in api
    assert "pp_test_wrong_key_42" not in result.stdout + result.stderr
    assert lines_of(result)["mailbox"].split()[1] == "ok:"  # the other checks still ran


def test_unknown_account_is_named(account: Account, tmp_path: Path) -> None:
    """An account id the key does not see: exit 4, the hint names OTP_BOT_ACCOUNT_ID."""
    env = account.env_with(tmp_path / "a.env", OTP_BOT_ACCOUNT_ID="acc_nobody")
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 4, result.stdout
    assert "check OTP_BOT_ACCOUNT_ID" in lines_of(result)["api"]


def test_disconnected_account_needs_attention(account: Account) -> None:
    """An account whose source is not OK: exit 4, its status shown."""
    account.simulator.admin("POST", "/_sim/account", {"connected": False})
    try:
        result = otp_bot("check", "--env-file", account.env_file)
    finally:
        account.simulator.admin("POST", "/_sim/account", {"connected": True})
    assert result.returncode == 4, result.stdout
    assert "needs attention: sources CREDENTIALS" in lines_of(result)["api"]


def test_refused_login_names_the_variables(account: Account, tmp_path: Path) -> None:
    """A wrong password: exit 5, the hint names the variables, the clock is skipped."""
    env = account.env_with(tmp_path / "p.env", OTP_BOT_IMAP_PASSWORD="wrong-password-7")
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 5, result.stdout
    found = lines_of(result)
    assert f"login refused for {USER}: [AUTHENTICATIONFAILED]" in found["mailbox"]
    assert "hint: check OTP_BOT_IMAP_USER and OTP_BOT_IMAP_PASSWORD" in found["mailbox"]
    assert found["clock"].startswith("clock    skipped")
    assert "wrong-password-7" not in result.stdout + result.stderr


def test_several_failures_exit_with_the_first_class(account: Account, tmp_path: Path) -> None:
    """Wrong key and wrong password: exit 4 (API comes before mailbox)."""
    env = account.env_with(tmp_path / "kp.env", OTP_BOT_API_KEY="pp_test_bad_key_1",
                   OTP_BOT_IMAP_PASSWORD="bad-password-1")  # fmt: skip
    assert otp_bot("check", "--env-file", env).returncode == 4


def test_state_directory_held_by_a_daemon(stack: Stack) -> None:
    """A running daemon holds the state directory: exit 3, its PID named."""
    result = otp_bot("check", "--env-file", stack.accounts["acc_run"].env_file)
    assert result.returncode == 3, result.stdout
    assert "in use by a running otp-bot daemon (PID " in lines_of(result)["state"]


def test_state_directory_that_cannot_be_made(account: Account, tmp_path: Path) -> None:
    """A state directory under a regular file: exit 3, the file named; nothing created."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = account.env_with(tmp_path / "s.env", OTP_BOT_STATE_DIR=str(blocker / "state"))
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 3, result.stdout
    assert f"{blocker} is not a directory" in lines_of(result)["state"]


def test_missing_state_directory_is_not_created(account: Account, tmp_path: Path) -> None:
    """check only looks: a state directory that does not exist yet is reported, not made."""
    state = tmp_path / "new-state"
    env = account.env_with(tmp_path / "n.env", OTP_BOT_STATE_DIR=str(state))
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 0, result.stdout
    assert "will be created" in lines_of(result)["state"]
    assert not state.exists()


def test_exposed_control_api_without_token(account: Account, tmp_path: Path) -> None:
    """0.0.0.0 without OTP_BOT_CONTROL_TOKEN: exit 2, the control line says why."""
    env = account.env_with(tmp_path / "c.env", OTP_BOT_CONTROL_ADDR="0.0.0.0:8787")
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 2, result.stdout
    assert "not a loopback address" in lines_of(result)["control"]


def test_unloadable_ca_file(account: Account, tmp_path: Path) -> None:
    """A CA file that is no PEM certificate: exit 2, the file named with a hint."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    env = account.env_with(tmp_path / "ca.env", OTP_BOT_IMAP_CA_FILE=str(bad))
    result = otp_bot("check", "--env-file", env)
    assert result.returncode == 2, result.stdout
    assert f"{bad} cannot be loaded" in lines_of(result)["ca-file"]


def test_config_error_in_json(tmp_path: Path) -> None:
    """--json with a bad configuration: still one JSON object, exit 2."""
    env = tmp_path / "bad.env"
    env.write_text("OTP_BOT_IMAP_FOLDR=x\n")
    result = otp_bot("check", "--json", "--env-file", env)
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["exit_code"] == 2
    assert "did you mean OTP_BOT_IMAP_FOLDER?" in report["checks"][0]["detail"]


@pytest.mark.parametrize("shift", [-300, 0, 300])
def test_server_clock_read_by_search_younger(dovecot: dc.Dovecot, tmp_path: Path,
                                             shift: int) -> None:  # fmt: skip
    """Against Dovecot (same clock): an arrival read N s later, as by a host clock N s
    behind, measures the server N s ahead."""
    dovecot.append(linkedin_message())
    session = Session(settings_for(dovecot, tmp_path), None)
    try:
        folder = session.open()
        assert "WITHIN" in folder.server.capabilities
        [(uid, arrival)] = session.newest(1)
        assert arrival is not None
        offset = session.clock_offset(uid, arrival + timedelta(seconds=shift))
    finally:
        session.close()
    assert offset is not None
    assert abs(offset - shift) <= 2.5, offset  # whole-second INTERNALDATE, one search's time


@pytest.mark.parametrize(
    ("offset", "arrival_ago", "status"),
    [(0.0, 10, "ok"), (-119.0, 10, "ok"), (-200.0, 10, "FAILED"), (500.0, 10, "FAILED"),
     (None, 10, "ok"), (None, -400, "FAILED")],
)  # fmt: skip
def test_clock_line(offset: float | None, arrival_ago: int, status: str) -> None:
    """Beyond OTP_BOT_CLOCK_SKEW either way fails (exit 6); without WITHIN only "ahead" shows."""
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    report = MailboxReport(True, 1, 1, True, True, Namespace(), MailAction.LEAVE, None, None,
                           now - timedelta(seconds=arrival_ago), offset)  # fmt: skip
    line = clock_line(report, 120.0, now)
    assert line.status == status, line
    assert line.exit_code == (EXIT_CLOCK if status == "FAILED" else 0)


async def test_a_server_without_uidplus_move_or_within(tmp_path: Path) -> None:
    """No UIDPLUS/MOVE: OTP_BOT_MAIL_AFTER_USE=delete fails (exit 5, hint: seen); no WITHIN:
    the clock is judged one-sided, from the newest arrival only."""
    server = dc.Dovecot(extra_config=("imap_capability = IMAP4rev1 IDLE",)).start()
    try:
        server.append(linkedin_message())
        settings = settings_for(server, tmp_path, mail_after_use="delete")
        lines = {line.name: line for line in await mailbox_lines(settings)}
    finally:
        server.cleanup()
    assert lines["mailbox"].status == "ok"
    assert lines["server"].status == "FAILED"
    assert lines["server"].exit_code == EXIT_MAILBOX
    assert "OTP_BOT_MAIL_AFTER_USE=delete needs UIDPLUS" in lines["server"].detail
    assert lines["server"].hint == "set OTP_BOT_MAIL_AFTER_USE=seen"
    assert lines["clock"].status == "ok"
    assert "no WITHIN" in lines["clock"].detail
