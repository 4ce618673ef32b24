"""Settings for many accounts in one pass (``otp-bot run`` with N env files).

``load_settings`` per env file lets pydantic-settings read the environment,
the env file and ``$CREDENTIALS_DIRECTORY`` again for every account (about
6 ms each: 6 s for 1,000 accounts). Here the environment and the credential
files are read once, each env file once, and each account's values are
validated by the same ``Settings`` model from them, with the same
precedence (overrides, then the environment, then the env file, then a
credential file), the same strict checks (``sources``) and the same error
messages, each prefixed with the env file it is about.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from otp_bot.config import ENV_PREFIX, Settings, describe, known_names
from otp_bot.errors import ConfigError
from otp_bot.sources import ENVIRONMENT, check_origins, credential_files


def load_many(env_files: Sequence[Path | None], **overrides: Any) -> list[Settings]:
    """One ``Settings`` per env file (None: the environment alone), read in one pass.

    The first file that does not load raises its ``ConfigError`` (prefixed
    with the file's name when there are several).
    """
    loaded = []
    for env_file, result in zip(env_files, load_each(env_files, **overrides), strict=True):
        if isinstance(result, ConfigError):
            raise ConfigError(f"{env_file}: {result}" if len(env_files) > 1 else str(result))
        loaded.append(result)
    return loaded


def load_each(env_files: Sequence[Path | None], **overrides: Any) -> list[Settings | ConfigError]:
    """Each env file's settings, or why it does not load: one bad file hides no other."""
    known = known_names()
    try:
        environ = _prefixed(os.environ)
        credentials = credential_files(os.environ.get("CREDENTIALS_DIRECTORY") or None)
        secret_values = {
            name: path.read_text(encoding="utf-8").strip() for name, path in credentials.items()
        }
    except (ConfigError, OSError) as exc:
        error = exc if isinstance(exc, ConfigError) else ConfigError(f"credential file: {exc}")
        return [error for _ in env_files]
    results: list[Settings | ConfigError] = []
    for env_file in env_files:
        try:
            from_file = _read_env_file(env_file)
            found: dict[str, list[str]] = {name: [ENVIRONMENT] for name in environ}
            for name in from_file:
                found.setdefault(name, []).append(f"env file {env_file}")
            for name, path in credentials.items():
                found.setdefault(name, []).append(f"credential file {path}")
            check_origins(found, known)
            results.append(_validated({**secret_values, **from_file, **environ}, overrides))
        except ConfigError as exc:
            results.append(exc)
    return results


def _read_env_file(env_file: Path | None) -> dict[str, str | None]:
    if env_file is None:
        return {}
    if not env_file.is_file():
        raise ConfigError(f"env file not found: {env_file}")
    text = env_file.read_text(encoding="utf-8")
    # ${NAME} expansion copies the whole environment for every line: only when used.
    return _prefixed(dotenv_values(stream=io.StringIO(text), interpolate="$" in text))


def _prefixed(values: Mapping[str, str | None]) -> dict[str, str | None]:
    return {
        name.upper(): value for name, value in values.items() if name.upper().startswith(ENV_PREFIX)
    }


def _validated(values: Mapping[str, str | None], overrides: Mapping[str, Any]) -> Settings:
    fields = {
        name.removeprefix(ENV_PREFIX).lower(): value
        for name, value in values.items()
        if value is not None  # a bare NAME line in an env file sets nothing
    }
    try:
        return _model({**fields, **overrides})
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def _model(values: Mapping[str, Any]) -> Settings:
    """``Settings`` validated from ``values`` alone, by pydantic's own ``__init__``.

    pydantic-settings' ``__init__`` would first build every source (reading the
    environment again) for each account: 20 times the cost of the validation.
    """
    settings = Settings.__new__(Settings)
    BaseModel.__init__(settings, **values)
    return settings


def shard_of(account_id: str, count: int) -> int:
    """The shard (0..count-1) an account belongs to: a stable hash of its id.

    SHA-256, not ``hash()`` (salted per process): every replica, every
    restart and every version computes the same shard.
    """
    digest = hashlib.sha256(account_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def in_shard(settings: Settings) -> bool:
    """Whether this account belongs to its ``OTP_BOT_SHARD`` (True when unset)."""
    if settings.shard is None:
        return True
    index, count = (int(part) for part in settings.shard.split("/"))
    return shard_of(settings.account_id, count) == index


def select_shard(loaded: Sequence[tuple[str, Settings]]) -> list[tuple[str, Settings]]:
    """The (source, settings) pairs of this process's ``OTP_BOT_SHARD`` (all when unset);
    ConfigError when the shard holds none of them."""
    mine = [pair for pair in loaded if in_shard(pair[1])]
    if loaded and not mine:
        raise ConfigError(
            f"OTP_BOT_SHARD={loaded[0][1].shard}: none of the {len(loaded)} accounts falls in "
            "this shard; run fewer replicas than accounts"
        )
    return mine
