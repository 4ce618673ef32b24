"""The command line as a user meets it: --version, --log-level, help with examples,
output cut short by its reader, plain errors with a hint."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otp_bot import __version__
from otp_bot.cli_help import COMMANDS
from tests.test_config import BASE, run_cli, write_env

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_defined_once() -> None:
    """--version prints the package metadata's version, which pyproject takes from __init__."""
    result = run_cli("--version")
    assert result.stdout.strip() == f"otp-bot {__version__}"
    assert importlib.metadata.version("otp-bot") == __version__
    assert "\nversion =" not in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(command: str) -> None:
    """`otp-bot COMMAND --help` has a description and examples that start with the command."""
    result = run_cli(command, "--help")
    assert result.returncode == 0
    description = COMMANDS[command][1].splitlines()[0]
    assert description in result.stdout
    examples = result.stdout.split("examples:\n", 1)[1].splitlines()
    assert examples
    assert all(line.strip().startswith(f"otp-bot {command}") or "otp-bot --" in line
               for line in examples if line.strip())  # fmt: skip


def test_top_level_help_lists_every_command() -> None:
    """`otp-bot --help` lists each command with its one-line summary."""
    result = run_cli("--help")
    for command, (summary, _, _) in COMMANDS.items():
        assert command in result.stdout
        assert summary in result.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_level_option_overrides_the_setting(tmp_path: Path, where: str) -> None:
    """--log-level (before or after the command) wins over OTP_BOT_LOG_LEVEL."""
    env = write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_LOG_LEVEL": "info"})
    args = ["config", "--env-file", str(env)]
    args = ["--log-level", "debug", *args] if where == "before" else [*args, "--log-level", "debug"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert '"log_level": "debug"' in result.stdout


def test_bad_log_level_is_a_usage_error() -> None:
    """An unknown --log-level exits 2 and lists the choices."""
    result = run_cli("--log-level", "loud", "config")
    assert result.returncode == 2
    assert "debug" in result.stderr


def test_output_survives_a_closed_pipe(tmp_path: Path) -> None:
    """A reader that went away (`| head`) ends the command quietly: no traceback, exit 141."""
    env = write_env(tmp_path / "a.env", BASE)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        result = subprocess.run(
            [sys.executable, "-m", "otp_bot", "config", "--show-origin", "--env-file", str(env)],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("OTP_BOT_")},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141


def test_control_error_is_plain(tmp_path: Path) -> None:
    """No daemon: one plain line naming the address, no traceback."""
    env = write_env(tmp_path / "a.env", {"OTP_BOT_CONTROL_ADDR": "127.0.0.1:9"})
    result = run_cli("status", "--env-file", str(env))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "otp-bot: no otp-bot daemon answers on 127.0.0.1:9 (connection refused)"
    )
    assert "Errno" not in result.stderr
    assert "Traceback" not in result.stderr
