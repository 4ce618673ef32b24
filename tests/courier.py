"""A private Courier-IMAP for the tests, unpacked by ``.ci/install-courier.sh``.

Courier's own front end (couriertcpd + imaplogin + authdaemond) wants system
paths (``/run/courier/authdaemon``) and conflicts with Dovecot's packages. The
part under test is ``imapd``, the mailbox server: after a login, imaplogin
only starts ``imapd Maildir`` with ``AUTHENTICATED`` set, one process per
connection. This module does the same from a small front end in the test
process: it greets, answers CAPABILITY and LOGIN (checking the password), then
starts imapd with Debian's default settings (``/etc/courier/imapd``) and
relays bytes both ways. Everything after LOGIN is Courier's: SELECT, IDLE
(without FAM it checks for new mail every ``IMAP_IDLE_TIMEOUT`` = 60 s),
NAMESPACE ``(("INBOX." "."))``, UIDPLUS, and no MOVE in Debian's list.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.dovecot import PASSWORD, free_port
from tests.imap_client import ImapClientMixin

ROOT = Path(os.environ.get("COURIER_TEST_ROOT", "/opt/courier-imap-test"))
IMAPD = ROOT / "usr" / "bin" / "imapd"
# Debian 12's /etc/courier/imapd, the settings imapd itself reads.
CAPABILITY = (
    "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"
)
IMAPD_ENV = {
    "IMAP_CAPABILITY": CAPABILITY,
    "IMAP_KEYWORDS": "1",
    "IMAP_ACL": "1",
    "IMAP_IDLE_TIMEOUT": "60",
    "IMAP_MAILBOX_SANITY_CHECK": "1",
    "IMAP_USELOCKS": "1",
    "IMAP_ENHANCEDIDLE": "0",
    "IMAP_TRASHFOLDERNAME": "Trash",
    "IMAP_EMPTYTRASH": "Trash:7",
    "IMAP_MOVE_EXPUNGE_TO_TRASH": "0",
    "IMAP_UMASK": "022",
}
# Bytes of one relay read.
CHUNK = 65536


def available() -> bool:
    return IMAPD.exists()


def _words(line: bytes) -> list[str]:
    """A command line's words; quoted strings (with \\-escapes) count as one."""
    words: list[str] = []
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    index = 0
    while index < len(text):
        if text[index] == " ":
            index += 1
        elif text[index] == '"':
            word, index = [], index + 1
            while index < len(text) and text[index] != '"':
                if text[index] == "\\":
                    index += 1
                word.append(text[index : index + 1])
                index += 1
            words.append("".join(word))
            index += 1
        else:
            end = text.find(" ", index)
            end = len(text) if end < 0 else end
            words.append(text[index:end])
            index = end
    return words


@dataclass
class Courier(ImapClientMixin):
    """Courier-IMAP's imapd behind a login front end on a free loopback port."""

    name = "courier"
    used_folder = "INBOX.otp-bot.used"
    idle_prompt = False  # IDLE looks for new mail every IMAP_IDLE_TIMEOUT (60 s)
    user: str = "bot@example.test"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ci-", dir="/tmp")))
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    password: str = PASSWORD
    _listener: socket.socket | None = None
    _sessions: list[tuple[socket.socket, subprocess.Popen[bytes] | None]] = field(
        default_factory=list
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.maildir() / sub).mkdir(parents=True, exist_ok=True)

    def maildir(self) -> Path:
        return self.root / "home" / "Maildir"

    # --- life ---------------------------------------------------------------

    def start(self) -> Courier:
        listener = socket.create_server((self.host, self.port), backlog=64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Like a server shutdown: imapd gets SIGTERM (it says BYE), connections close."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Every imapd killed and every connection reset."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def _end(self, sig: signal.Signals) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked on it
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for conn, proc in sessions:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    # --- the front end --------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._sessions.append((conn, None))
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        # Unbuffered: no read-ahead past the LOGIN line, which imapd must not miss.
        with contextlib.suppress(OSError), conn.makefile("rb", buffering=0) as reader:
            conn.sendall(f"* OK [CAPABILITY {CAPABILITY}] Courier-IMAP ready (test)\r\n".encode())
            while line := reader.readline(8192):
                words = _words(line)
                if len(words) < 2:
                    conn.sendall(b"* BAD Error in IMAP command received by server.\r\n")
                    continue
                tag, command = words[0], words[1].upper()
                if command == "LOGIN" and words[2:4] == [self.user, self.password]:
                    self._relay(conn, tag)
                    return
                conn.sendall(self._answer(tag, command).encode())
                if command == "LOGOUT":
                    return

    def _answer(self, tag: str, command: str) -> str:
        if command == "CAPABILITY":
            return f"* CAPABILITY {CAPABILITY}\r\n{tag} OK CAPABILITY completed\r\n"
        if command == "NOOP":
            return f"{tag} OK NOOP completed\r\n"
        if command == "LOGOUT":
            return f"* BYE Courier-IMAP server shutting down\r\n{tag} OK LOGOUT completed\r\n"
        if command == "LOGIN":
            return f"{tag} NO Login failed.\r\n"
        return f"{tag} NO Error in IMAP command received by server.\r\n"

    def _relay(self, conn: socket.socket, tag: str) -> None:
        """Start imapd for the logged-in user and copy bytes both ways until one side ends."""
        env = {
            "PATH": "/usr/bin:/bin",
            "LD_LIBRARY_PATH": f"{ROOT}/usr/lib",
            "AUTHENTICATED": self.user,
            "HOME": str(self.root / "home"),
            **IMAPD_ENV,
        }
        with (self.root / "imapd.log").open("ab") as log:
            proc = subprocess.Popen(
                [str(IMAPD), "Maildir"],
                cwd=self.root / "home",
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        with self._lock:
            self._sessions = [(c, proc if c is conn else p) for c, p in self._sessions]
        assert proc.stdin is not None
        assert proc.stdout is not None
        # imapd greets as for a pre-authenticated session; the client gets the LOGIN answer.
        while (greeting := proc.stdout.readline()) and not greeting.startswith(b"* PREAUTH"):
            pass
        conn.sendall(f"{tag} OK LOGIN Ok.\r\n".encode())
        threading.Thread(target=_copy_out, args=(proc, conn), daemon=True).start()
        try:
            while data := conn.recv(CHUNK):
                proc.stdin.write(data)
                proc.stdin.flush()
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()

    # --- mail ---------------------------------------------------------------

    def write_maildir(self, messages: list[bytes], received: float | None = None) -> None:
        """Put messages straight into INBOX's Maildir (``new/``), as a delivery agent does.

        Courier keeps messages with bare LF line ends (and adds the CR itself).
        """
        for raw in messages:
            name = f"{time.time_ns()}.{uuid.uuid4().hex}.otp-bot-test"
            tmp = self.maildir() / "tmp" / name
            tmp.write_bytes(raw.replace(b"\r\n", b"\n"))
            if received is not None:
                os.utime(tmp, (received, received))
            tmp.rename(self.maildir() / "new" / name)

    def recreate_inbox(self, uidvalidity: int) -> None:
        """A new, empty INBOX whose UIDVALIDITY is ``uidvalidity`` (server stopped)."""
        for sub in ("tmp", "new", "cur"):
            shutil.rmtree(self.maildir() / sub)
            (self.maildir() / sub).mkdir()
        (self.maildir() / "courierimapuiddb").write_text(f"1 {uidvalidity} 1\n")


def _copy_out(proc: subprocess.Popen[bytes], conn: socket.socket) -> None:
    assert proc.stdout is not None
    try:
        while data := proc.stdout.read1(CHUNK):
            conn.sendall(data)
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        proc.stdout.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
