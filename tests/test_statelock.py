"""One daemon per state directory: the flock on <state dir>/otp-bot.lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otp_bot.daemon.statelock import LOCK_NAME, StateLock
from otp_bot.errors import StateLocked

HOLD = """
import sys
from pathlib import Path
from otp_bot.daemon.statelock import StateLock
StateLock.acquire(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.read()
"""


def test_second_holder_is_refused_naming_the_first_pid(tmp_path: Path) -> None:
    """While another process holds the lock, acquire raises StateLocked with that process's PID."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateLocked, match=rf"\(PID {holder.pid}\)"):
            StateLock.acquire(tmp_path)
    finally:
        holder.communicate("", timeout=10)
    # The kernel dropped the lock when the holder exited: a new start succeeds.
    StateLock.acquire(tmp_path).release()


def test_release_frees_the_lock_and_a_new_holder_writes_its_pid(tmp_path: Path) -> None:
    """release() lets the next acquire succeed; the file then names the new holder."""
    first = StateLock.acquire(tmp_path / "state")
    with pytest.raises(StateLocked, match=rf"\(PID {os.getpid()}\)"):
        StateLock.acquire(tmp_path / "state")
    first.release()
    second = StateLock.acquire(tmp_path / "state")
    assert (tmp_path / "state" / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    second.release()


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A state path that cannot hold a directory gives StateLocked saying where, not OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateLocked, match="cannot open the lock"):
        StateLock.acquire(blocker / "state")
