"""One daemon per state directory: an exclusive ``flock`` on ``<state dir>/otp-bot.lock``.

Two daemons on one state database would both publish the same drafts and
race for the same codes. The lock is taken before the database is opened and
held for the process's life; the kernel releases it when the process ends,
however it ends (SIGKILL included), so a stale lock never blocks a restart.
The holder writes its PID into the file, so a refused second instance can name
it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from otp_bot.errors import StateLocked

LOCK_NAME = "otp-bot.lock"
# The PID line is short; more than this is not ours.
_MAX_PID_BYTES = 32


class StateLock:
    """The held lock of one state directory; ``release()`` (or process exit) frees it."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd = fd

    @classmethod
    def acquire(cls, directory: Path) -> StateLock:
        """Take the lock or raise ``StateLocked`` naming the holder's PID (never blocks)."""
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            message = f"cannot open the lock in state directory {directory}: {exc}"
            raise StateLocked(message) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"PID {holder}" if holder else "another process"
            raise StateLocked(
                f"state directory {directory} is in use by another otp-bot daemon ({who}); "
                "one daemon per state directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(directory, fd)

    def release(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = -1


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _MAX_PID_BYTES, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def holder(directory: Path) -> str | None:
    """Who holds the lock of ``directory`` ("PID 123"), or None when nobody does.

    Looks without writing: the lock file is opened read-only (never created),
    and a lock taken to test it is dropped at once.
    """
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file (or none we may read): nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        return f"PID {pid}" if pid else "another process"
    finally:
        os.close(fd)  # closing also drops the test lock
    return None
