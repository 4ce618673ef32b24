"""Where each ``OTP_BOT_*`` value comes from, looked at strictly before it is read.

pydantic-settings reads the values (the environment beats an env file, which
beats a credential file). It accepts silently what an operator gets wrong, so
the same three places are looked at here first, and refused:

- an ``OTP_BOT_*`` name that is no setting (a typo), with a "did you mean";
- a variable given both as a credential file and another way (the
  environment or an env file), naming both origins: a placeholder left in an
  env file must not beat the real ``LoadCredential=`` secret;
- an empty credential file, and a ``CREDENTIALS_DIRECTORY`` that is missing.

``origins()`` tells where each value came from (``otp-bot config --show-origin``).
Nothing here returns or prints a value: only names and places.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from otp_bot.errors import ConfigError

PREFIX = "OTP_BOT_"
ENVIRONMENT = "environment"
# A credential file is a secret of a few hundred bytes at most; a bigger
# file is a mistake (a whole key store), not read.
MAX_CREDENTIAL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Origins:
    """Variable name -> where it was given, for every ``OTP_BOT_*`` name found."""

    where: dict[str, str] = field(default_factory=dict)

    def of(self, name: str) -> str:
        return self.where.get(name, "default")


def origins(
    known: Collection[str],
    env_file: Path | None,
    environ: Mapping[str, str],
    credentials_dir: str | None,
) -> Origins:
    """Every ``OTP_BOT_*`` name given and its origin; ConfigError for what is refused."""
    found: dict[str, list[str]] = {}
    for name in _prefixed(environ):
        found.setdefault(name, []).append(ENVIRONMENT)
    if env_file is not None:
        for name in _prefixed(dotenv_values(env_file, encoding="utf-8")):
            found.setdefault(name, []).append(f"env file {env_file}")
    for name, path in credential_files(credentials_dir).items():
        found.setdefault(name, []).append(f"credential file {path}")
    return check_origins(found, known)


def check_origins(found: Mapping[str, list[str]], known: Collection[str]) -> Origins:
    """Refuse unknown names and secrets given twice; the origin of each name."""
    _refuse_unknown(found, known)
    _refuse_twice_given(found)
    # The first origin wins, as in pydantic-settings (environment, env file, credential).
    return Origins({name: places[0] for name, places in found.items()})


def _prefixed(names: Mapping[str, object]) -> list[str]:
    return [name.upper() for name in names if name.upper().startswith(PREFIX)]


def credential_files(directory: str | None) -> dict[str, Path]:
    """``OTP_BOT_*`` files of ``$CREDENTIALS_DIRECTORY``; empty ones are refused."""
    if directory is None:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(
            f"CREDENTIALS_DIRECTORY={directory} is not a directory (systemd sets it "
            "for LoadCredential=; unset it, or point it at the credential files)"
        )
    files = {}
    for path in sorted(root.iterdir()):
        if not path.name.upper().startswith(PREFIX) or not path.is_file():
            continue
        size = path.stat().st_size
        if size > MAX_CREDENTIAL_BYTES:
            raise ConfigError(f"credential file {path} is larger than {MAX_CREDENTIAL_BYTES} bytes")
        if not path.read_bytes().strip():
            raise ConfigError(f"credential file {path} is empty")
        files[path.name.upper()] = path
    return files


def _refuse_unknown(found: Mapping[str, list[str]], known: Collection[str]) -> None:
    problems = []
    for name in sorted(set(found) - set(known)):
        guess = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        problems.append(f"{name} (in the {found[name][0]}) is not a setting{hint}")
    if problems:
        raise ConfigError("; ".join(problems))


def _refuse_twice_given(found: Mapping[str, list[str]]) -> None:
    problems = [
        f"{name} is given twice: in the {' and in the '.join(places)}; keep one"
        for name, places in sorted(found.items())
        if len(places) > 1 and any(p.startswith("credential file") for p in places)
    ]
    if problems:
        raise ConfigError("; ".join(problems))
