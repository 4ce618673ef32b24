"""The control API's own token, when ``OTP_BOT_CONTROL_TOKEN`` is not set.

The daemon creates a random token on first start and keeps it in
``<state dir>/control-token`` (0600, owner only); the CLI reads it from there.
So the draft endpoints are never open to whatever can reach the port (another
user of the host, a web page by DNS rebinding): who may read the state
directory may hand drafts to the daemon, nobody else.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

TOKEN_FILE = "control-token"  # noqa: S105 (a file name, not a password)
# 32 random bytes, URL-safe base64: 43 characters.
TOKEN_BYTES = 32
# A token file is one line; anything longer is not ours and not read.
_MAX_TOKEN_FILE = 256


def read(directory: Path) -> str | None:
    """The token stored in ``directory``, or None (no file, unreadable, or empty)."""
    try:
        with (directory / TOKEN_FILE).open("rb") as file:
            text = file.read(_MAX_TOKEN_FILE).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text or None


def ensure(directories: Iterable[Path], *, keep: str | None = None) -> str:
    """The token of these state directories: ``keep`` (the one a running server
    has), else the first one stored, else a new one; written (0600) into each
    directory that lacks it or holds another."""
    ordered = list(dict.fromkeys(directories))
    stored = keep or next(filter(None, map(read, ordered)), None)
    token = stored or secrets.token_urlsafe(TOKEN_BYTES)
    for directory in ordered:
        if read(directory) != token:
            _write(directory / TOKEN_FILE, token)
    return token


def _write(path: Path, token: str) -> None:
    """Atomically: a temporary file created 0600, then renamed over the old one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{token}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
