"""IMAP servers other than Dovecot, for the tests that must hold on every server.

``Pymap`` runs pymap (pure Python, from PyPI, installed with the test extras)
with its Maildir backend, so mail survives a restart. ``Courier`` runs
Courier-IMAP's ``imapd`` unpacked from the Debian package into a private
directory (``.ci/install-courier.sh``): see ``tests/courier.py``.

Every server class offers what the server-parametrized tests use, with the
same meaning as ``tests.dovecot.Dovecot``: ``start/stop/kill/restart/cleanup``,
``client/append/uids/flags`` (``tests.imap_client``, shared by all three),
``write_maildir``, ``recreate_inbox`` and ``used_folder`` (the server's own
name of ``otp-bot/used``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.dovecot import PASSWORD, START_TIMEOUT, free_port
from tests.imap_client import ImapClientMixin

PYMAP = Path(sys.executable).with_name("pymap")


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
            return
        time.sleep(0.02)  # polling a port until it opens; there is no event to wait on
    raise RuntimeError(f"server did not listen within {START_TIMEOUT}s")


def stop_group(proc: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _hashed(password: str) -> str:
    """pymap's password format (few rounds: a test login must be cheap)."""
    from pysasl.hashing import BuiltinHash

    return str(BuiltinHash(rounds=1000).hash(password))


@dataclass
class Pymap(ImapClientMixin):
    """One pymap process with the Maildir backend. ``start()``, then ``host``/``port``."""

    name = "pymap"
    used_folder = "otp-bot/used"
    idle_prompt = True  # announces mail appended through IMAP at once
    user: str = "bot@example.test"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp")))
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    password: str = PASSWORD
    _proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        (self.root / "pymap-etc-passwd").write_text(f"{self.user}:::::mail\n")
        hashed = _hashed(self.password).replace(":", "\\:")
        (self.root / "pymap-etc-shadow").write_text(f"{self.user}:{hashed}\n")

    def start(self) -> Pymap:
        log = self.root / "pymap.log"
        with log.open("ab") as out:
            argv = [str(PYMAP), "--host", self.host, "--port", str(self.port), "--no-tls"]
            self._proc = subprocess.Popen(
                [*argv, "maildir", str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        wait_listening(self.host, self.port, self._proc, log)
        return self

    def stop(self) -> None:
        stop_group(self._proc, signal.SIGTERM)
        self._proc = None

    def kill(self) -> None:
        stop_group(self._proc, signal.SIGKILL)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def maildir(self) -> Path:
        return self.root / "mail"

    def write_maildir(self, messages: list[bytes]) -> None:
        """Put messages straight into INBOX's Maildir (``new/``), as a delivery agent does."""
        for sub in ("tmp", "new", "cur"):
            (self.maildir() / sub).mkdir(parents=True, exist_ok=True)
        for raw in messages:
            name = f"{time.time_ns()}.{uuid.uuid4().hex}.otp-bot-test"
            (self.maildir() / "tmp" / name).write_bytes(raw)
            (self.maildir() / "tmp" / name).rename(self.maildir() / "new" / name)

    def recreate_inbox(self, uidvalidity: int) -> None:
        """A new, empty INBOX with the given UIDVALIDITY (server stopped)."""
        shutil.rmtree(self.maildir())
        for sub in ("tmp", "new", "cur"):
            (self.maildir() / sub).mkdir(parents=True)
        header = f"3 V{uidvalidity} N1 G{uuid.uuid4().hex}\r\n"
        (self.maildir() / "dovecot-uidlist").write_text(header)
