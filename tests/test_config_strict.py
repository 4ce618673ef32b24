"""Strict configuration: typos, a secret given twice, empty or missing credential files,
cleartext API URLs, a missing CA file, owner-only state files, masking, origins."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from otp_bot.config import load_settings, load_settings_with_origins
from otp_bot.errors import ConfigError
from otp_bot.logs import configure
from otp_bot.store.db import Store
from tests.test_config import API_KEY, BASE, IMAP_PASSWORD, run_cli, write_env

ROOT = Path(__file__).resolve().parent.parent
REFRESH_TOKEN = "1//0refresh-token-abcdefghijklmnop"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTP_BOT_* or CREDENTIALS_DIRECTORY from the outside environment."""
    for name in list(os.environ):
        if name.startswith("OTP_BOT_") or name in {"CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"}:
            monkeypatch.delenv(name)


@pytest.fixture
def creds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $CREDENTIALS_DIRECTORY."""
    directory = tmp_path / "creds"
    directory.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(directory))
    return directory


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("OTP_BOT_IMAP_FOLDR", "OTP_BOT_IMAP_FOLDER"),
        ("OTP_BOT_ACOUNT_ID", "OTP_BOT_ACCOUNT_ID"),
        ("OTP_BOT_API_KEYS", "OTP_BOT_API_KEY"),
        ("otp_bot_imap_prot", "OTP_BOT_IMAP_PORT"),
    ],
)
def test_unknown_name_in_env_file_refused_with_a_guess(
    tmp_path: Path, typo: str, meant: str
) -> None:
    """A misspelled variable in an env file is refused, with "did you mean" the right one."""
    with pytest.raises(ConfigError) as info:
        load_settings(write_env(tmp_path / "a.env", {**BASE, typo: "x"}))
    assert f"{typo.upper()} (in the env file {tmp_path / 'a.env'}) is not a setting" in str(
        info.value
    )
    assert f"did you mean {meant}?" in str(info.value)


def test_unknown_name_in_environment_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misspelled variable in the environment is refused too; a far-off name gets no guess."""
    monkeypatch.setenv("OTP_BOT_WHATEVER_ELSE", "1")
    with pytest.raises(ConfigError) as info:
        load_settings(write_env(tmp_path / "a.env", BASE))
    assert str(info.value) == "OTP_BOT_WHATEVER_ELSE (in the environment) is not a setting"


def test_unknown_name_exits_2_for_every_command(tmp_path: Path) -> None:
    """`run`, `check`, `config` and the control commands all exit 2 on a typo."""
    env = write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_IMAP_FOLDR": "Archive"})
    for command in ("config", "check", "run", "status", "health"):
        result = run_cli(command, "--env-file", str(env))
        assert result.returncode == 2, (command, result.stderr)
        assert "did you mean OTP_BOT_IMAP_FOLDER?" in result.stderr
        assert "Traceback" not in result.stderr


def test_other_variables_in_env_files_are_left_alone(tmp_path: Path) -> None:
    """Only OTP_BOT_* names are checked: an EnvironmentFile may hold TZ or LANG as well."""
    settings = load_settings(write_env(tmp_path / "a.env", {**BASE, "TZ": "UTC"}))
    assert settings.account_id == "acc_1"


@pytest.mark.parametrize("where", ["environment", "env file"])
def test_secret_given_twice_is_refused_naming_both(
    tmp_path: Path, creds: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A credential file and another value of the same variable: refused, both origins named."""
    (creds / "OTP_BOT_API_KEY").write_text("pp_live_the_real_key_123")
    values = dict(BASE)  # the env file keeps its OTP_BOT_API_KEY placeholder
    if where == "environment":
        values.pop("OTP_BOT_API_KEY")
        monkeypatch.setenv("OTP_BOT_API_KEY", "pp_test_replace_me")
    env = write_env(tmp_path / "a.env", values)
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    origin = "environment" if where == "environment" else f"env file {env}"
    assert str(info.value) == (
        f"OTP_BOT_API_KEY is given twice: in the {origin} and in the credential file "
        f"{creds / 'OTP_BOT_API_KEY'}; keep one"
    )
    assert "pp_live_the_real_key_123" not in str(info.value)


def test_empty_credential_file_refused(tmp_path: Path, creds: Path) -> None:
    """An empty (or blank) credential file is refused, the file named."""
    (creds / "OTP_BOT_IMAP_PASSWORD").write_text(" \n")
    values = {k: v for k, v in BASE.items() if k != "OTP_BOT_IMAP_PASSWORD"}
    with pytest.raises(
        ConfigError, match=f"credential file {creds}/OTP_BOT_IMAP_PASSWORD is empty"
    ):
        load_settings(write_env(tmp_path / "a.env", values))


def test_missing_credentials_directory_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CREDENTIALS_DIRECTORY that does not exist is named, not reported as "API_KEY required"."""
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "gone"))
    with pytest.raises(ConfigError) as info:
        load_settings(write_env(tmp_path / "a.env", BASE))
    assert f"CREDENTIALS_DIRECTORY={tmp_path / 'gone'} is not a directory" in str(info.value)


def test_empty_api_key_refused(tmp_path: Path) -> None:
    """OTP_BOT_API_KEY= (empty) is refused rather than sent."""
    with pytest.raises(ConfigError, match="OTP_BOT_API_KEY: is empty"):
        load_settings(write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_API_KEY": ""}))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://api.postpress.ai/v1", False),
        ("http://10.0.0.5:8790/v1", False),
        ("http://127.0.0.1:8790/v1", True),
        ("http://[::1]:8790/v1", True),
        ("http://localhost:8790/v1", True),
        ("https://api.postpress.ai/v1", True),
    ],
)
def test_cleartext_api_url_only_for_loopback(tmp_path: Path, url: str, allowed: bool) -> None:
    """http:// carries the API key in cleartext: only a loopback host may use it."""
    env = write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_API_BASE_URL": url})
    if allowed:
        assert str(load_settings(env).api_base_url).startswith(url.split("/v1", maxsplit=1)[0])
    else:
        with pytest.raises(ConfigError, match="http:// is only allowed for a loopback host"):
            load_settings(env)


def test_missing_ca_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    """A missing OTP_BOT_IMAP_CA_FILE fails `run` at once (exit 2), the file named."""
    missing = tmp_path / "no-such-ca.pem"
    env = write_env(tmp_path / "a.env", {**BASE, "OTP_BOT_IMAP_CA_FILE": str(missing)})
    result = run_cli("run", "--env-file", str(env))
    assert result.returncode == 2
    assert f"OTP_BOT_IMAP_CA_FILE: {missing}: no such file" in result.stderr


def test_state_database_files_are_owner_only(tmp_path: Path) -> None:
    """The database and its -wal/-shm are 0600 whatever the umask; a 0644 file is tightened."""
    old = os.umask(0o022)
    try:
        db = tmp_path / "state" / "otp-bot.sqlite3"
        store = Store(db)
        with store.transaction() as conn:  # a write, so that -wal and -shm exist
            conn.execute("CREATE TABLE t (x)")
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        assert {oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {"0o600"}
        store.close()
        db.chmod(0o644)
        Store(db).close()
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_config_masks_token_command_and_url_credentials(tmp_path: Path) -> None:
    """`otp-bot config` hides the token command's arguments and a URL's user:password."""
    values = {
        **BASE,
        "OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND": f"/usr/local/bin/get-token --refresh={REFRESH_TOKEN}",
        "OTP_BOT_API_BASE_URL": "https://proxyuser:proxy-password-77@api.postpress.ai/v1",
    }
    result = run_cli("config", "--env-file", str(write_env(tmp_path / "a.env", values)))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)[0]
    assert shown["imap_oauth2_token_command"] == "/usr/local/bin/get-token ****"
    assert shown["api_base_url"] == "https://****@api.postpress.ai/v1"
    for secret in (REFRESH_TOKEN, "proxy-password-77", "proxyuser", API_KEY, IMAP_PASSWORD):
        assert secret not in result.stdout + result.stderr


def test_show_origin_names_where_each_value_came_from(
    tmp_path: Path, creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--show-origin: environment, env file, credential file or default, secrets hidden."""
    (creds / "OTP_BOT_IMAP_PASSWORD").write_text(IMAP_PASSWORD)
    monkeypatch.setenv("OTP_BOT_IMAP_FOLDER", "Archive")
    values = {k: v for k, v in BASE.items() if k != "OTP_BOT_IMAP_PASSWORD"}
    env = write_env(tmp_path / "a.env", values)
    _settings, origins = load_settings_with_origins(env)
    assert origins.of("OTP_BOT_IMAP_FOLDER") == "environment"
    assert origins.of("OTP_BOT_IMAP_HOST") == f"env file {env}"
    assert origins.of("OTP_BOT_IMAP_PASSWORD") == f"credential file {creds}/OTP_BOT_IMAP_PASSWORD"
    assert origins.of("OTP_BOT_IMAP_PORT") == "default"
    result = run_cli(
        "config",
        "--show-origin",
        "--env-file",
        str(env),
        env={"CREDENTIALS_DIRECTORY": str(creds), "OTP_BOT_IMAP_FOLDER": "Archive"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "OTP_BOT_IMAP_FOLDER=Archive  # environment" in lines
    assert f"OTP_BOT_IMAP_HOST=imap.example.com  # env file {env}" in lines
    assert "OTP_BOT_IMAP_PORT=993  # default" in lines
    assert (
        f"OTP_BOT_IMAP_PASSWORD=**********  # credential file {creds}/OTP_BOT_IMAP_PASSWORD"
        in lines
    )
    assert IMAP_PASSWORD not in result.stdout


def test_token_command_and_url_credentials_never_logged(tmp_path: Path) -> None:
    """Log lines never show the token command's secret argument or any URL's user:password."""
    import io

    values = {
        **BASE,
        "OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND": f"get-token {REFRESH_TOKEN}",
        "OTP_BOT_API_BASE_URL": "https://u:long-proxy-password@api.example.com/v1",
    }
    settings = load_settings(write_env(tmp_path / "a.env", values))
    stream = io.StringIO()
    configure("json", "info", settings.secrets(), stream=stream)
    log = structlog.get_logger("test")
    log.warning("api_request_failed", error=f"cannot reach {settings.api_base_url}")
    log.warning("mailbox_token_failed", error=f"ran get-token {REFRESH_TOKEN} for nothing")
    log.warning("other", error="fetch ftp://someone:hunter2hunter2@files.example.com/x failed")
    text = stream.getvalue()
    assert "long-proxy-password" not in text
    assert REFRESH_TOKEN not in text
    assert "hunter2hunter2" not in text
    assert "someone" not in text
    assert "https://****@api.example.com/v1" in text


def test_cli_main_module_runs(tmp_path: Path) -> None:
    """`python -m otp_bot` is the CLI (guards the helpers above against a broken entry point)."""
    result = subprocess.run(
        [sys.executable, "-m", "otp_bot", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
