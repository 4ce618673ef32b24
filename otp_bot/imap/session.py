"""One blocking IMAP connection (imap-tools); its methods run on the IMAP pool's threads.

Every method either does what it says or raises ``MailboxError`` (connection
trouble: reconnect) or ``MailboxAuthError`` (login refused). Mail is only ever
fetched with ``BODY.PEEK``, so reading never sets ``\\Seen``.

(Over 250 lines: one class wrapping each IMAP command the watcher uses, each
with its error translation.)
"""

from __future__ import annotations

import imaplib
import socket
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from imap_tools import BaseMailBox

from otp_bot.config import MailAction, Settings
from otp_bot.errors import MailboxError
from otp_bot.imap import actions
from otp_bot.imap import server as info
from otp_bot.imap import wire as fetch
from otp_bot.imap.auth import TokenSource
from otp_bot.imap.clock import server_offset
from otp_bot.imap.learn import learn
from otp_bot.imap.login import connect, login
from otp_bot.imap.server import ServerInfo
from otp_bot.imap.wire import LIBRARY_ERRORS, translated

# LOGOUT on shutdown gets this long; the 2-second stop budget includes it.
CLOSE_TIMEOUT = 0.8


class Waiting(Enum):
    """How ``begin_wait`` left the connection."""

    # New mail was already announced: no wait, look now.
    SPOKE = "spoke"
    # In IDLE, and the server's next words are already buffered: end it at once.
    BUFFERED = "buffered"
    # In IDLE: wait for the socket to become readable.
    IDLING = "idling"
    # No IDLE on this server: wait the poll interval, then NOOP.
    POLLING = "polling"


@dataclass(frozen=True, slots=True)
class FolderState:
    uidvalidity: int
    uidnext: int  # 0 when the server did not say
    exists: int
    server: ServerInfo  # read after this login

    @property
    def idle(self) -> bool:
        return self.server.idle


class Session:
    """A logged-in connection with the watched folder selected."""

    def __init__(self, settings: Settings, tokens: TokenSource | None) -> None:
        self._settings = settings
        self._tokens = tokens
        self._box: BaseMailBox | None = None
        self._waiting: Waiting | None = None  # the wait begun and not yet ended
        self._idle_tag: bytes | None = None  # IDLE's tag while it runs
        self._aborted = False  # abort() was called: a connect still under way is dropped
        self.folder: FolderState | None = None

    # --- connecting ---------------------------------------------------------

    def open(self) -> FolderState:
        box = self._box = connect(self._settings)
        if self._aborted:  # abort() came during the connect, when it could not reach the socket
            self._box = None
            with _ignored():
                box.client.shutdown()
            raise MailboxError("connect abandoned: the mailbox is stopping")
        with translated("connect"):
            fetch.slim(self.client)
        login(self._box, self._settings, self._tokens)
        with translated("capabilities"):
            server = learn(self.client)
        with translated("select"):
            self.folder = self._select(server)
        return self.folder

    def _select(self, server: ServerInfo) -> FolderState:
        client, name = self.client, self._settings.imap_folder
        typ, data = client.select(fetch.quote(name))
        if typ != "OK":
            raise MailboxError(f"folder {name!r} cannot be selected: {data!r}")
        codes = client.untagged_responses
        uidvalidity = fetch.first_int(codes.get("UIDVALIDITY"))
        if uidvalidity is None:
            raise MailboxError("the server reported no UIDVALIDITY")
        state = FolderState(
            uidvalidity=uidvalidity,
            uidnext=fetch.first_int(codes.get("UIDNEXT")) or 0,
            exists=fetch.first_int(data) or 0,
            server=server,
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
            responses = self.client.untagged_responses
            # A server may announce a new UIDVALIDITY mid-session (RFC 3501 2.3.1.1):
            # the UIDs we hold mean nothing any more; reconnect and start over.
            announced = fetch.first_int(responses.get("UIDVALIDITY"))
            if announced is not None and announced != self.state.uidvalidity:
                raise MailboxError(f"UIDVALIDITY changed to {announced} during the session")
            responses.clear()
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

    def clock_offset(self, uid: int, arrival: datetime) -> float | None:
        """The server's clock minus ours in seconds, read by SEARCH (None: no WITHIN)."""
        if "WITHIN" not in self.state.server.capabilities:
            return None
        with translated("search younger"):
            return server_offset(self.client, uid, arrival)

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

    # --- waiting (lane.ImapLane.wait: these two run on a pool thread, the wait between
    # them on the event loop) ----------------------------------------------------

    def begin_wait(self) -> Waiting:
        """Start a wait: IDLE sent and its continuation read, when the server has IDLE."""
        self._waiting = None
        with translated("idle"):
            if self.client.untagged_responses.pop("EXISTS", None):
                self._waiting = Waiting.SPOKE
            elif not self.state.idle:
                self._waiting = Waiting.POLLING
            else:
                self._waiting = self._begin_idle()
        return self._waiting

    def _begin_idle(self) -> Waiting:
        client = self.client
        tag = client._command("IDLE")
        self._idle_tag = tag
        while client._get_response() is not None:  # untagged lines before "+ idling"
            if client.tagged_commands.get(tag):
                self._idle_tag = None
                raise MailboxError(f"IDLE refused: {client.tagged_commands[tag]!r}")
        # New mail announced before, or together with, the continuation sits in
        # imaplib's (or TLS's) buffer, where the socket's readiness cannot show it.
        if "EXISTS" in client.untagged_responses or fetch.buffered_input(client):
            return Waiting.BUFFERED
        return Waiting.IDLING

    def end_wait(self, *, spoke: bool) -> bool:
        """End the wait begun last: DONE after IDLE; a NOOP probe after a poll or a silent
        IDLE. True when the server spoke (always after a poll: look anyway)."""
        waiting, self._waiting = self._waiting, None
        with translated("idle"):
            if self._idle_tag is not None:
                tag, self._idle_tag = self._idle_tag, None
                self.client.send(b"DONE\r\n")
                self.box.consume_until_tagged_response(tag)
            if waiting is Waiting.POLLING or (waiting is Waiting.IDLING and not spoke):
                self._noop()
        return waiting is not Waiting.IDLING or spoke

    def fileno(self) -> int:
        """The socket the server's IDLE notices arrive on."""
        with translated("idle"):
            fd = self.client.sock.fileno()
        if fd < 0:
            raise MailboxError("idle: the connection is closed")
        return fd

    def _noop(self) -> None:
        typ, data = self.client.noop()
        if typ != "OK":
            raise MailboxError(f"NOOP refused: {data!r}")

    # --- acting on used mail --------------------------------------------------

    def apply(
        self, uidvalidity: int, uid: int, action: MailAction, target: str
    ) -> MailAction | None:
        """Mark, move or delete one message: what was done (None: an older UIDVALIDITY)."""
        if uidvalidity != self.state.uidvalidity:
            return None
        server = self.state.server
        folder = info.folder_name(target, server.namespace)
        with translated(f"after use ({action})"):
            return actions.apply(self.client, server, uid, action, folder)

    # --- closing --------------------------------------------------------------

    def close(self) -> None:
        """LOGOUT, bounded by CLOSE_TIMEOUT; never raises."""
        box, self._box = self._box, None
        if box is None:
            return
        try:
            box.client.sock.settimeout(CLOSE_TIMEOUT)
            box.client.logout()
        except LIBRARY_ERRORS:
            with _ignored():
                box.client.shutdown()

    def abort(self) -> None:
        """From another thread: make any blocking call on this connection fail now, and
        a connect under way (inside the library, out of reach) close once it is made."""
        self._aborted = True
        box = self._box
        if box is not None:
            with _ignored():
                box.client.sock.shutdown(socket.SHUT_RDWR)


def _ignored() -> suppress:
    return suppress(*LIBRARY_ERRORS)
