"""Settings: required values, validation, secrets from files, and the CLI's exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otp_bot.config import ImapSecurity, InputForm, load_settings
from otp_bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "pp_test_configsecret_7f3a9"
IMAP_PASSWORD = "imap-pass-config-9b2c"

BASE = {
    "OTP_BOT_ACCOUNT_ID": "acc_1",
    "OTP_BOT_API_KEY": API_KEY,
    "OTP_BOT_IMAP_HOST": "imap.example.com",
    "OTP_BOT_IMAP_USER": "bot@example.com",
    "OTP_BOT_IMAP_PASSWORD": IMAP_PASSWORD,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTP_BOT_* or CREDENTIALS_DIRECTORY from the outside environment."""
    for name in list(os.environ):
        if name.startswith("OTP_BOT_") or name in {"CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"}:
            monkeypatch.delenv(name)


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_env_file_defaults(tmp_path: Path) -> None:
    """An env file with the required values gives the design's defaults."""
    settings = load_settings(write_env(tmp_path / "a.env", BASE))
    assert settings.imap_port == 993
    assert settings.imap_security is ImapSecurity.TLS
    assert settings.imap_folder == "INBOX"
    assert str(settings.api_base_url) == "https://api.postpress.ai/v1"
    assert settings.control_addr == "127.0.0.1:8787"
    assert settings.state_dir == Path("state")
    assert settings.verification_input_order == [InputForm.LINK, InputForm.PIN]
    assert settings.api_key.get_secret_value() == API_KEY


def test_state_directory_from_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$STATE_DIRECTORY (systemd StateDirectory=) is the default state dir."""
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/otp-bot/acme:/other")
    settings = load_settings(write_env(tmp_path / "a.env", BASE))
    assert settings.state_dir == Path("/var/lib/otp-bot/acme")


def test_missing_values_are_named(tmp_path: Path) -> None:
    """Every missing required variable is named in one message."""
    env = write_env(tmp_path / "a.env", {"OTP_BOT_IMAP_HOST": "imap.example.com"})
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    for name in ("OTP_BOT_ACCOUNT_ID", "OTP_BOT_API_KEY", "OTP_BOT_IMAP_USER"):
        assert f"{name}: is required" in message


def test_plain_imap_refused_off_loopback(tmp_path: Path) -> None:
    """OTP_BOT_IMAP_SECURITY=none is refused for a non-loopback host."""
    env = write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_IMAP_SECURITY": "none"})
    with pytest.raises(ConfigError, match="only allowed for a loopback"):
        load_settings(env)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.5.0.9"])
def test_plain_imap_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    """Loopback hosts may use OTP_BOT_IMAP_SECURITY=none."""
    values = {**BASE, "OTP_BOT_IMAP_SECURITY": "none", "OTP_BOT_IMAP_HOST": host}
    assert load_settings(write_env(tmp_path / "a.env", values)).imap_host == host


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OTP_BOT_IMAP_PORT", "99999", "OTP_BOT_IMAP_PORT"),
        ("OTP_BOT_IMAP_SECURITY", "ssl", "OTP_BOT_IMAP_SECURITY"),
        ("OTP_BOT_CONTROL_ADDR", "nohostport", "OTP_BOT_CONTROL_ADDR"),
        ("OTP_BOT_CODE_TIMEOUT", "-5", "OTP_BOT_CODE_TIMEOUT"),
        ("OTP_BOT_VERIFICATION_INPUT_ORDER", "link,link", "OTP_BOT_VERIFICATION_INPUT_ORDER"),
        ("OTP_BOT_API_BASE_URL", "not a url", "OTP_BOT_API_BASE_URL"),
        ("OTP_BOT_LOG_LEVEL", "loud", "OTP_BOT_LOG_LEVEL"),
    ],
)
def test_invalid_value_named_without_echo(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    """An invalid value is reported by variable name and never echoed."""
    env = write_env(tmp_path / "a.env", {**BASE, name: value})
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert expected in str(info.value)
    assert value not in str(info.value)


def test_password_or_oauth_required(tmp_path: Path) -> None:
    """Without a password an OAuth2 token command is required."""
    values = {k: v for k, v in BASE.items() if k != "OTP_BOT_IMAP_PASSWORD"}
    with pytest.raises(ConfigError, match="OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND"):
        load_settings(write_env(tmp_path / "a.env", values))
    values["OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND"] = "/usr/bin/true"
    assert load_settings(write_env(tmp_path / "b.env", values)).imap_password is None


def test_secrets_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets can be files in $CREDENTIALS_DIRECTORY named like the variable."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "OTP_BOT_API_KEY").write_text("pp_test_from_file_1234")
    (creds / "OTP_BOT_IMAP_PASSWORD").write_text("pw-from-file")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    values = {
        k: v for k, v in BASE.items() if k not in {"OTP_BOT_API_KEY", "OTP_BOT_IMAP_PASSWORD"}
    }
    settings = load_settings(write_env(tmp_path / "a.env", values))
    assert settings.api_key.get_secret_value() == "pp_test_from_file_1234"
    assert settings.imap_password is not None
    assert settings.imap_password.get_secret_value() == "pw-from-file"


def test_missing_env_file(tmp_path: Path) -> None:
    """A missing --env-file is a configuration error, not a silent default."""
    with pytest.raises(ConfigError, match="env file not found"):
        load_settings(tmp_path / "nope.env")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTP_BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "otp_bot", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_config_error_exit_2(tmp_path: Path) -> None:
    """A bad configuration exits 2 with one line, no traceback, no secret."""
    env = write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_IMAP_PORT": "x"})
    result = run_cli("config", "--env-file", str(env))
    assert result.returncode == 2
    assert "OTP_BOT_IMAP_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert API_KEY not in result.stderr + result.stdout
    assert IMAP_PASSWORD not in result.stderr + result.stdout


def test_cli_config_shows_settings_without_secrets(tmp_path: Path) -> None:
    """`otp-bot config` prints the effective settings with secrets hidden."""
    env = write_env(tmp_path / "a.env", BASE)
    result = run_cli("config", "--env-file", str(env))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown[0]["account_id"] == "acc_1"
    assert shown[0]["api_key"] == "**********"
    assert API_KEY not in result.stdout
    assert IMAP_PASSWORD not in result.stdout
