"""A throwaway Dovecot on a loopback port, for tests and bench scripts.

Follows ../shared/imap-testing.md: everything lives under one short directory
in /tmp, Dovecot runs in its own process group (killed as a group), and mail
can be appended over IMAP or written straight into the Maildir.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.imap_client import ImapClientMixin

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
# Dovecot needs a few tens of milliseconds to listen; give a slow CI machine plenty.
START_TIMEOUT = 15.0
PASSWORD = "dovecot-test-secret"


def available() -> bool:
    return Path(DOVECOT).exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_user() -> str:
    return "dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _openssl(*args: str) -> None:
    subprocess.run([OPENSSL, *args], check=True, capture_output=True)


@dataclass
class Certificates:
    """A throwaway CA and a server certificate it signed for localhost/127.0.0.1."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> Certificates:
        ca_key, ca = directory / "ca.key", directory / "ca.pem"
        key, csr, cert = directory / "key.pem", directory / "req.csr", directory / "cert.pem"
        ext = directory / "san.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-days", "3650", "-subj", "/CN=otp-bot test CA",
                 "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
        _openssl("req", *ec, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-days", "3650", "-extfile", str(ext),
                 "-out", str(cert))  # fmt: skip
        for path in (key, cert, ca):
            path.chmod(0o644)
        return cls(ca=ca, cert=cert, key=key)


@dataclass
class Dovecot(ImapClientMixin):
    """One private Dovecot instance. ``start()``, then use ``host``/``port``
    (and the ``client/append/uids/flags`` helpers of ``tests.imap_client``)."""

    name = "dovecot"
    used_folder = "otp-bot.used"  # Maildir++: "." delimiter, no personal prefix
    idle_prompt = True  # announces new mail about 0.5 s after it arrives
    users: tuple[str, ...] = ("bot@example.test",)
    tls: bool = False  # also listen for implicit TLS on ``tls_port``
    idle: bool = True  # advertise IDLE
    mechanisms: str = "plain login"  # e.g. "plain login xoauth2" (the password doubles as token)
    extra_config: tuple[str, ...] = ()  # more dovecot.conf lines, e.g. for benchmarks
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dc-", dir="/tmp")))
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    password: str = PASSWORD
    certs: Certificates | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        return self.users[0]

    @property
    def pid(self) -> int | None:
        """The master process (its own session: every Dovecot process shares it)."""
        return self._proc.pid if self._proc is not None else None

    def __post_init__(self) -> None:
        self.root.chmod(0o755)
        for name in ("mail", "state"):
            (self.root / name).mkdir(exist_ok=True)
        if self.tls and self.certs is None:
            self.certs = Certificates.create(self.root)
        self._write_config()
        if os.geteuid() == 0:
            shutil.chown(self.root / "mail", "dovecot", "dovecot")

    def _write_config(self) -> None:
        run_user = _run_user()
        lines = [
            "protocols = imap",
            "listen = 127.0.0.1",
            f"base_dir = {self.root}/run",
            f"state_dir = {self.root}/state",
            f"log_path = {self.root}/dovecot.log",
            f"auth_mechanisms = {self.mechanisms}",
            "auth_failure_delay = 0",
            "disable_plaintext_auth = no",
            f"default_internal_user = {run_user}",
            f"default_internal_group = {run_user}",
            f"default_login_user = {run_user}",
            "first_valid_uid = 1",
            f"mail_location = maildir:{self.root}/mail/%u",
            "mail_max_userip_connections = 1000",
            "mail_fsync = never",
            # Every test Dovecot runs as the same user, and the kernel allows a user
            # fs.inotify.max_user_instances (default 128) inotify instances: with a
            # benchmark's hundreds of IMAP processes on the machine, new IMAP processes
            # get none and announce new mail to IDLE only at this check (default 30 s,
            # longer than a test waits for a delivery).
            "mailbox_idle_check_interval = 1 secs",
            f"passdb {{\n  driver = passwd-file\n  args = {self.root}/users\n}}",
            "userdb {\n  driver = static\n"
            f"  args = uid={run_user} gid={run_user} home={self.root}/mail/%u\n}}",
            "service anvil {\n  chroot =\n  unix_listener anvil-auth-penalty {\n"
            "    mode = 0\n  }\n}",
        ]
        imaps = f"  inet_listener imaps {{\n    port = {self.tls_port}\n    ssl = yes\n  }}\n"
        lines.append(
            "service imap-login {\n  chroot =\n"
            f"  inet_listener imap {{\n    port = {self.port}\n  }}\n"
            + (imaps if self.tls else "  inet_listener imaps {\n    port = 0\n  }\n")
            + "}"
        )
        if self.certs is not None:
            lines += ["ssl = yes", f"ssl_cert = <{self.certs.cert}", f"ssl_key = <{self.certs.key}"]
        else:
            lines.append("ssl = no")
        if not self.idle:
            lines.append("imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS UIDPLUS")
        lines += self.extra_config
        (self.root / "dovecot.conf").write_text("\n".join(lines) + "\n")
        users = "".join(f"{u}:{{PLAIN}}{self.password}\n" for u in self.users)
        (self.root / "users").write_text(users)

    # --- life ---------------------------------------------------------------

    def start(self) -> Dovecot:
        shutil.rmtree(self.root / "run", ignore_errors=True)
        self._drop_stale_dotlocks()
        log = (self.root / "dovecot.log").open("ab")
        self._proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return
            time.sleep(0.02)  # polling a port until it opens; there is no event to wait on
        raise RuntimeError(f"dovecot did not listen within {START_TIMEOUT}s: {self.log_tail()}")

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        self._proc = None

    def stop(self) -> None:
        """Graceful stop: clients get ``* BYE``."""
        self._signal_group(signal.SIGTERM)

    def _drop_stale_dotlocks(self) -> None:
        """Remove dot-lock files a killed instance left in the Maildirs.

        Maildir's ``dovecot-uidlist.lock`` is a dot-lock file: a SIGKILL while
        an imap process holds it leaves it behind, and the next instance waits
        for it to go stale (minutes) before a SELECT answers. No Dovecot of
        this instance runs here, so every such file is stale.
        """
        mail = self.root / "mail"
        if mail.is_dir():
            for lock in mail.rglob("dovecot-uidlist.lock"):
                lock.unlink(missing_ok=True)

    def kill(self) -> None:
        """Hard kill of the whole process group: clients see a reset or nothing."""
        self._signal_group(signal.SIGKILL)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The whole process group stopped (SIGSTOP) for the block, then continued: a
        hung mail server, whose connections stay open and never answer."""
        assert self._proc is not None
        group = self._proc.pid
        os.killpg(group, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(group, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        path = self.root / "dovecot.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- mail ---------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        assert self.certs is not None
        return ssl.create_default_context(cafile=str(self.certs.ca))

    def create_folder(self, folder: str, user: str | None = None) -> None:
        conn = self.client(user)
        try:
            conn.create(folder)
        finally:
            conn.logout()

    def recreate_inbox(self, user: str | None = None, uidvalidity: int | None = None) -> None:
        """Delete and recreate INBOX's Maildir: a new UIDVALIDITY (server must be stopped).

        Dovecot takes UIDVALIDITY from the clock in seconds; pass ``uidvalidity``
        to get a different one even within the same second.
        """
        maildir = self.maildir(user)
        shutil.rmtree(maildir)
        self._ensure_maildir(maildir)
        if uidvalidity is not None:
            uidlist = maildir / "dovecot-uidlist"
            uidlist.write_text(f"3 V{uidvalidity} N1 G{uuid.uuid4().hex}\n")
            if os.geteuid() == 0:
                shutil.chown(uidlist, "dovecot", "dovecot")

    def maildir(self, user: str | None = None) -> Path:
        return self.root / "mail" / (user or self.user)

    def _ensure_maildir(self, maildir: Path) -> None:
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (maildir, *(maildir / s for s in ("tmp", "new", "cur"))):
                shutil.chown(path, "dovecot", "dovecot")

    def write_maildir(
        self, messages: list[bytes], user: str | None = None, received: float | None = None
    ) -> None:
        """Put messages straight into INBOX's Maildir (fast; works while stopped).

        ``received`` (epoch seconds) back-dates the arrival time (INTERNALDATE).
        """
        maildir = self.maildir(user)
        self._ensure_maildir(maildir)
        uid = gid = -1
        if os.geteuid() == 0:
            entry = pwd.getpwnam("dovecot")
            uid, gid = entry.pw_uid, entry.pw_gid
        for raw in messages:
            name = f"{time.time_ns()}.{uuid.uuid4().hex}.otp-bot-test"
            tmp = maildir / "tmp" / name
            tmp.write_bytes(raw)
            if uid >= 0:
                os.chown(tmp, uid, gid)
            if received is not None:
                os.utime(tmp, (received, received))
            tmp.rename(maildir / "new" / name)


def simple_message(subject: str = "hello", sender: str = "someone@example.net") -> bytes:
    """A minimal plain-text message with a unique Message-ID."""
    return (
        f"From: {sender}\r\nTo: bot@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.net>\r\n"
        "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    ).encode()


def bytes_sent(log_text: str) -> int:
    """Total bytes Dovecot sent to clients that logged out (its ``out=`` counters)."""
    return sum(int(m) for m in re.findall(r"\bout=(\d+)", log_text))
