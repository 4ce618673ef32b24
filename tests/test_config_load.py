"""One-pass loading of many accounts gives exactly what loading each env file alone gives."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from otp_bot.config import load_settings
from otp_bot.config_load import load_many, shard_of
from otp_bot.daemon.sources import ENVIRONMENT, Sources
from otp_bot.errors import ConfigError

# SHA-256 of the account id, pinned: a change would move accounts between replicas.
SHARDS_OF_FIRST_EIGHT = [2, 3, 1, 3, 2, 0, 2, 3]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTP_BOT_* variable or credential directory leaks in from the test run."""
    for name in list(os.environ):
        if name.upper().startswith("OTP_BOT_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


# Values of the kinds the model parses: strings, numbers, enums, lists, bools, paths.
CHOICES = {
    "OTP_BOT_IMAP_PORT": ["143", "993", "10143"],
    "OTP_BOT_IMAP_SECURITY": ["none", "starttls", "tls"],
    "OTP_BOT_TRUSTED_AUTHSERV_IDS": ["", "mx.google.com", "mx.a.test, mx.b.test"],
    "OTP_BOT_VERIFICATION_INPUT_ORDER": ["link,pin", "pin", "pin, link"],
    "OTP_BOT_PUBLISH_HIRING_PHOTO_FRAME": ["true", "0", "yes"],
    "OTP_BOT_CODE_TIMEOUT": ["900", "60.5"],
    "OTP_BOT_MAIL_AFTER_USE": ["leave", "seen"],
    "OTP_BOT_LOG_LEVEL": ["info", "DEBUG"],
}


def random_env(path: Path, index: int, rng: random.Random) -> Path:
    lines = [
        f"OTP_BOT_ACCOUNT_ID=acc_{index}",
        f"OTP_BOT_API_KEY=pp_key_{index}",
        "OTP_BOT_IMAP_HOST=127.0.0.1",
        f"otp_bot_imap_user=user{index}@example.test",  # names are case-insensitive
        f'OTP_BOT_IMAP_PASSWORD="pw {index}"',
    ]
    lines += [
        f"{name}={rng.choice(values)}" for name, values in CHOICES.items() if rng.random() < 0.7
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_same_settings_as_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty random env files, an environment override and a credential file: equal results."""
    rng = random.Random(15)
    files = [random_env(tmp_path / f"a{i}.env", i, rng) for i in range(40)]
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "OTP_BOT_CONTROL_TOKEN").write_text("tok-from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.setenv("OTP_BOT_IMAP_TIMEOUT", "12")
    one_by_one = [load_settings(path, log_level="warning") for path in files]
    together = load_many(files, log_level="warning")
    assert [s.model_dump() for s in together] == [s.model_dump() for s in one_by_one]
    assert together[3].control_token is not None
    assert together[3].control_token.get_secret_value() == "tok-from-file"
    assert {s.imap_timeout for s in together} == {12}


@pytest.mark.parametrize(
    "line",
    [
        "OTP_BOT_IMAP_PORT=99999",
        "OTP_BOT_IMAP_SECRUITY=tls",
        "OTP_BOT_CODE_TIMEOUT=-1",
        "OTP_BOT_IMAP_SECURITY=none\nOTP_BOT_IMAP_HOST=mail.example.com",
    ],
)
def test_same_errors_as_one_by_one(tmp_path: Path, line: str) -> None:
    """A bad file is refused with the message loading it alone gives, prefixed by its name."""
    good = random_env(tmp_path / "good.env", 1, random.Random(1))
    bad = random_env(tmp_path / "bad.env", 2, random.Random(2))
    bad.write_text(bad.read_text() + line + "\n")
    with pytest.raises(ConfigError) as alone:
        load_settings(bad)
    with pytest.raises(ConfigError) as together:
        load_many([good, bad])
    assert str(together.value) == f"{bad}: {alone.value}"
    assert "pw 2" not in str(together.value)


def test_shards_partition_the_accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTP_BOT_SHARD=i/n: each account runs in exactly one of n replicas, spread evenly,
    by a hash that every process computes alike."""
    files = [random_env(tmp_path / f"a{i}.env", i, random.Random(i)) for i in range(400)]
    seen: list[str] = []
    for index in range(4):
        monkeypatch.setenv("OTP_BOT_SHARD", f"{index}/4")
        mine, bad = Sources(tuple(files)).load()  # the daemon's own way in
        assert bad == []
        assert 70 < len(mine) < 130
        seen += [s.account_id for _source, s in mine]
    assert sorted(seen) == sorted(f"acc_{i}" for i in range(400))
    assert [shard_of(f"acc_{i}", 4) for i in range(8)] == SHARDS_OF_FIRST_EIGHT


def test_bad_or_empty_shard_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed shard and a shard holding no account are configuration errors."""
    files = [random_env(tmp_path / "a.env", 0, random.Random(0))]
    for spec in ("4/4", "1of4", "-1/4"):
        monkeypatch.setenv("OTP_BOT_SHARD", spec)
        with pytest.raises(ConfigError, match="OTP_BOT_SHARD"):
            load_many(files)
    empty = next(i for i in range(8) if i != shard_of("acc_0", 8))
    monkeypatch.setenv("OTP_BOT_SHARD", f"{empty}/8")
    loaded, bad = Sources(tuple(files)).load()
    assert loaded == []
    assert [source for source, _error in bad] == [ENVIRONMENT]
    assert re.search("none of the 1 accounts", bad[0][1])
