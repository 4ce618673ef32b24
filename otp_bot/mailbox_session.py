"""One blocking IMAP connection (imap-tools), used from the watcher's own thread.

Every method either does what it says or raises ``MailboxError`` (connection
trouble: reconnect) or ``MailboxAuthError`` (login refused). Mail is only ever
fetched with ``BODY.PEEK``, so reading never sets ``\\Seen``.
"""

from __future__ import annotations

import imaplib
import selectors
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

import structlog
from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, MailboxLoginError

from otp_bot import mailbox_fetch as fetch
from otp_bot.config import ImapSecurity, MailAction, Settings
from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.mailbox_auth import TokenSource, tls_context, xoauth2_responder

log = structlog.get_logger(__name__)

# LOGOUT on shutdown gets this long; the 2-second stop budget includes it.
CLOSE_TIMEOUT = 0.8
# TCP keepalive finds a dead peer under a silent IDLE in about 60 + 3 * 20 s.
KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 20, "TCP_KEEPCNT": 3}
# Login refusals with these response codes are the server's trouble, not ours.
TRANSIENT_LOGIN_CODES = ("[UNAVAILABLE]", "[SERVERBUG]", "[INUSE]", "[LIMIT]")
_LIBRARY_ERRORS = (imaplib.IMAP4.error, OSError, EOFError, ImapToolsError)


@dataclass(frozen=True, slots=True)
class FolderState:
    uidvalidity: int
    uidnext: int  # 0 when the server did not say
    exists: int
    idle: bool
    uidplus: bool


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Library errors become ``MailboxError`` naming the step that failed."""
    try:
        yield
    except MailboxError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise MailboxError(f"{what}: {type(exc).__name__}: {exc}") from exc


class Session:
    """A logged-in connection with the watched folder selected."""

    def __init__(self, settings: Settings, tokens: TokenSource | None, wake_fd: int | None) -> None:
        self._settings = settings
        self._tokens = tokens
        self._wake_fd = wake_fd
        self._box: BaseMailBox | None = None
        self.folder: FolderState | None = None

    # --- connecting ---------------------------------------------------------

    def open(self) -> FolderState:
        with translated("connect"):
            self._box = self._connect()
            _keepalive(self._box.client.sock)
        self._login()
        with translated("select"):
            self.folder = self._select()
        return self.folder

    def _connect(self) -> BaseMailBox:
        s = self._settings
        if s.imap_security is ImapSecurity.TLS:
            context = tls_context(s.imap_ca_file)
            return MailBox(s.imap_host, s.imap_port, timeout=s.imap_timeout, ssl_context=context)
        if s.imap_security is ImapSecurity.STARTTLS:
            if s.imap_port == 993:
                raise MailboxError("STARTTLS needs the plain IMAP port (usually 143), not 993")
            context = tls_context(s.imap_ca_file)
            return MailBoxStartTls(
                s.imap_host, s.imap_port, timeout=s.imap_timeout, ssl_context=context
            )
        return MailBoxUnencrypted(s.imap_host, s.imap_port, timeout=s.imap_timeout)

    def _login(self) -> None:
        try:
            if self._tokens is None:
                self._password_login()
            else:
                self._xoauth2_login()
        except imaplib.IMAP4.abort as exc:
            raise MailboxError(f"login: connection lost: {exc}") from exc
        except (imaplib.IMAP4.error, MailboxLoginError) as exc:
            text = str(exc)
            if any(code in text for code in TRANSIENT_LOGIN_CODES):
                raise MailboxError(f"login: server busy: {text}") from exc
            raise MailboxAuthError(f"login refused for {self._settings.imap_user}: {text}") from exc
        except _LIBRARY_ERRORS as exc:
            raise MailboxError(f"login: {type(exc).__name__}: {exc}") from exc

    def _password_login(self) -> None:
        secret = self._settings.imap_password
        password = secret.get_secret_value() if secret is not None else ""
        if password.isascii() and self._settings.imap_user.isascii():
            self.box.login(self._settings.imap_user, password, initial_folder=None)
        else:
            self.box.login_utf8(self._settings.imap_user, password, initial_folder=None)

    def _xoauth2_login(self) -> None:
        tokens, user = self._tokens, self._settings.imap_user
        if tokens is None:
            raise MailboxAuthError("no OAuth2 token command configured")
        try:
            self.client.authenticate("XOAUTH2", xoauth2_responder(user, tokens.get()))
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            # The token may have been revoked or expired early: one fresh try.
            log.warning("mailbox_token_refused", error=str(exc))
            tokens.invalidate()
            self.client.authenticate("XOAUTH2", xoauth2_responder(user, tokens.get()))

    def _select(self) -> FolderState:
        client, name = self.client, self._settings.imap_folder
        typ, data = client.select(fetch.quote(name))
        if typ != "OK":
            raise MailboxError(f"folder {name!r} cannot be selected: {data!r}")
        codes = client.untagged_responses
        uidvalidity = fetch.first_int(codes.get("UIDVALIDITY"))
        if uidvalidity is None:
            raise MailboxError("the server reported no UIDVALIDITY")
        typ, caps = client.capability()
        names = set((caps[-1] or b"").decode().upper().split()) if typ == "OK" else set()
        state = FolderState(
            uidvalidity=uidvalidity,
            uidnext=fetch.first_int(codes.get("UIDNEXT")) or 0,
            exists=fetch.first_int(data) or 0,
            idle="IDLE" in names,
            uidplus="UIDPLUS" in names,
        )
        codes.clear()
        return state

    # --- reading ------------------------------------------------------------

    @property
    def box(self) -> BaseMailBox:
        if self._box is None:
            raise MailboxError("not connected")
        return self._box

    @property
    def client(self) -> imaplib.IMAP4:
        return self.box.client

    @property
    def state(self) -> FolderState:
        if self.folder is None:
            raise MailboxError("no folder selected")
        return self.folder

    def search_above(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``, ascending (``n:*`` also returns the newest UID: filtered)."""
        with translated("search"):
            self.client.untagged_responses.clear()
            typ, data = self.client.uid("SEARCH", f"UID {last_uid + 1}:*")
            if typ != "OK":
                raise MailboxError(f"search refused: {data!r}")
            return sorted(uid for uid in fetch.ints(data) if uid > last_uid)

    def newest(self, count: int) -> list[tuple[int, datetime | None]]:
        """(UID, arrival time) of the last ``count`` messages, by sequence number."""
        if self.state.exists == 0:
            return []
        first = max(1, self.state.exists - count + 1)
        with translated("fetch dates"):
            typ, data = self.client.fetch(f"{first}:*", "(UID INTERNALDATE)")
            if typ != "OK":
                raise MailboxError(f"fetch refused: {data!r}")
        return [(item.uid, item.internal_date) for item in fetch.parse(data)]

    def headers(self, uids: list[int]) -> list[fetch.Item]:
        with translated("fetch headers"):
            typ, data = self.client.uid(
                "FETCH", fetch.uid_set(uids), "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])"
            )
            if typ != "OK":
                raise MailboxError(f"fetch refused: {data!r}")
        return [item for item in fetch.parse(data) if item.uid in set(uids)]

    def body(self, uid: int, size: int, limit: int) -> tuple[bytes, bool] | None:
        """The whole message, or its first ``limit`` bytes; None when it vanished."""
        part = "BODY.PEEK[]" if size <= limit else f"BODY.PEEK[]<0.{limit}>"
        with translated("fetch body"):
            typ, data = self.client.uid("FETCH", str(uid), f"(UID {part})")
            if typ != "OK":
                raise MailboxError(f"fetch refused: {data!r}")
        for item in fetch.parse(data):
            if item.uid == uid:
                return item.literal, size <= limit and len(item.literal) >= size
        return None

    # --- waiting --------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Block until the server reports something, ``timeout`` passes or we are woken.

        True when the server spoke. A silent timeout ends with a NOOP probe, so
        a dead connection is found here rather than at the next mail.
        """
        with translated("idle"):
            if self.client.untagged_responses.pop("EXISTS", None):
                return True
            if not self.state.idle:
                self._wait_readable(timeout, watch_socket=False)
                self._noop()
                return True
            spoke = self._idle(timeout)
            if not spoke:
                self._noop()
            return spoke

    def _idle(self, timeout: float) -> bool:
        client = self.client
        tag = client._command("IDLE")
        while client._get_response() is not None:  # untagged lines before "+ idling"
            if client.tagged_commands.get(tag):
                raise MailboxError(f"IDLE refused: {client.tagged_commands[tag]!r}")
        try:
            # Lines that came with the continuation sit in imaplib's buffer,
            # where select() cannot see them.
            return fetch.buffered_input(client) or self._wait_readable(timeout, watch_socket=True)
        finally:
            client.send(b"DONE\r\n")
            self.box.consume_until_tagged_response(tag)

    def _wait_readable(self, timeout: float, *, watch_socket: bool) -> bool:
        with selectors.DefaultSelector() as selector:
            if watch_socket:
                selector.register(self.client.sock, selectors.EVENT_READ, "server")
            if self._wake_fd is not None:
                selector.register(self._wake_fd, selectors.EVENT_READ, "wake")
            ready = {key.data for key, _ in selector.select(timeout)}
        if "wake" in ready and self._wake_fd is not None:
            fetch.drain(self._wake_fd)
        return "server" in ready

    def _noop(self) -> None:
        typ, data = self.client.noop()
        if typ != "OK":
            raise MailboxError(f"NOOP refused: {data!r}")

    # --- acting on used mail --------------------------------------------------

    def apply(self, uid: int, action: MailAction, target: str) -> None:
        with translated(f"after use ({action})"):
            client, box = self.client, self.box
            if action is MailAction.SEEN:
                fetch.check(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"))
            elif action is MailAction.MOVE:
                folder = self._server_name(target)
                if not box.folder.exists(folder):
                    box.folder.create(folder)
                box.move(str(uid), folder)
            elif action is MailAction.DELETE:
                fetch.check(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"))
                # UID EXPUNGE removes only this message, not others marked \Deleted.
                uidplus = self.state.uidplus
                fetch.check(client.uid("EXPUNGE", str(uid)) if uidplus else client.expunge())

    def _server_name(self, folder: str) -> str:
        """``a/b`` with the server's hierarchy delimiter (Dovecot's Maildir++ uses ".")."""
        typ, data = self.client.list('""', '""')
        delimiter = fetch.list_delimiter(data) if typ == "OK" else None
        return folder.replace("/", delimiter) if delimiter else folder

    # --- closing --------------------------------------------------------------

    def close(self) -> None:
        """LOGOUT, bounded by CLOSE_TIMEOUT; never raises."""
        box, self._box = self._box, None
        if box is None:
            return
        try:
            box.client.sock.settimeout(CLOSE_TIMEOUT)
            box.client.logout()
        except _LIBRARY_ERRORS:
            with _ignored():
                box.client.shutdown()

    def abort(self) -> None:
        """From another thread: make any blocking call on this connection fail now."""
        box = self._box
        if box is not None:
            with _ignored():
                box.client.sock.shutdown(socket.SHUT_RDWR)


def _ignored() -> suppress:
    return suppress(*_LIBRARY_ERRORS)


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE.items():
        if hasattr(socket, name):  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
