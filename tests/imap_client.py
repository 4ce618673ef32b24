"""What the tests do to a test IMAP server as "another client", over plain imaplib.

Every test server (``tests.dovecot.Dovecot``, ``tests.imap_servers.Pymap``,
``tests.courier.Courier``) takes these helpers with its ``host``, ``port``,
``user`` and ``password``: log in, APPEND a message and learn its UID, list a
folder's UIDs, read one message's flags. Each connection is opened for one
helper call and logged out after it.
"""

from __future__ import annotations

import imaplib
import socket
import time


class ImapClientMixin:
    """Plain-imaplib helpers over ``host``/``port``/``user``/``password``."""

    host: str
    port: int
    password: str

    @property
    def user(self) -> str:
        """The login the helpers use unless told another (a field or property of the server)."""
        raise NotImplementedError

    def client(self, user: str | None = None) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        # pymap and Nagle: small writes wait for delayed ACKs without this.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.login(user or self.user, self.password)
        return conn

    def append(self, raw: bytes, *, folder: str = "INBOX", user: str | None = None) -> int:
        """APPEND one message; returns its UID (UIDPLUS: every test server has it)."""
        conn = self.client(user)
        try:
            typ, data = conn.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            code = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            return int(code.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
        finally:
            conn.logout()

    def uids(self, folder: str = "INBOX", user: str | None = None) -> list[int]:
        conn = self.client(user)
        try:
            typ, data = conn.select(folder, readonly=True)
            if typ != "OK":
                raise RuntimeError(f"cannot select {folder!r}: {data!r}")
            _typ, data = conn.uid("SEARCH", "ALL")
            return [int(x) for x in (data[0] or b"").split()]
        finally:
            conn.logout()

    def flags(self, uid: int, folder: str = "INBOX", user: str | None = None) -> str:
        conn = self.client(user)
        try:
            conn.select(folder, readonly=True)
            _typ, data = conn.uid("FETCH", str(uid), "(FLAGS)")
            item = data[0]
            return item.decode() if isinstance(item, bytes) else str(item)
        finally:
            conn.logout()
