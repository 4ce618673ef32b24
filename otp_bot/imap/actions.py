"""After-use actions on one message, by UID, touching no other message.

A plain EXPUNGE removes every message marked ``\\Deleted`` in the folder,
including mail another client (a phone, a colleague's mail program) only
marked for deletion; it is never sent. A message leaves the folder by
``UID MOVE`` (RFC 6851) or by ``UID COPY`` + ``UID STORE \\Deleted`` +
``UID EXPUNGE`` (UIDPLUS, RFC 4315), chosen from the capabilities the server
announced after login. With neither, ``move`` and ``delete`` degrade to
``seen`` (the watcher says so loudly at every connection), and so does
``delete`` without UIDPLUS.

imap-tools' ``MailBox.move``/``delete`` are not used: they decide from
imaplib's pre-login capability list and fall back to a plain EXPUNGE.
"""

from __future__ import annotations

import imaplib

from otp_bot.config import MailAction
from otp_bot.errors import MailboxError
from otp_bot.imap.server import ServerInfo
from otp_bot.imap.wire import check, quote


def effective(action: MailAction, server: ServerInfo) -> MailAction:
    """The action really taken on this server (``seen`` when it cannot remove one message)."""
    if action is MailAction.MOVE and not (server.move or server.uidplus):
        return MailAction.SEEN
    if action is MailAction.DELETE and not server.uidplus:
        return MailAction.SEEN
    return action


def apply(
    client: imaplib.IMAP4, server: ServerInfo, uid: int, action: MailAction, folder: str
) -> MailAction:
    """Apply ``action`` to message ``uid`` of the selected folder; returns what was done.

    ``folder`` is the move target's server name (``server.folder_name``).
    Raises ``MailboxError`` (or a library error) when the server refuses.
    """
    taken = effective(action, server)
    one = str(uid)
    if taken is MailAction.SEEN:
        check(client.uid("STORE", one, "+FLAGS.SILENT", r"(\Seen)"))
    elif taken is MailAction.MOVE:
        ensure_folder(client, folder)
        if server.move:
            check(client.uid("MOVE", one, quote(folder)))
        else:
            check(client.uid("COPY", one, quote(folder)))
            _remove(client, one)
    elif taken is MailAction.DELETE:
        _remove(client, one)
    return taken


def _remove(client: imaplib.IMAP4, one: str) -> None:
    """``\\Deleted`` on this UID, then UID EXPUNGE of this UID only (UIDPLUS)."""
    check(client.uid("STORE", one, "+FLAGS.SILENT", r"(\Deleted)"))
    check(client.uid("EXPUNGE", one))


def folder_exists(client: imaplib.IMAP4, folder: str) -> bool:
    """``LIST "" name`` answers with the folder (read-only: used by ``check`` too)."""
    typ, data = client.list('""', quote(folder))
    if typ != "OK":
        raise MailboxError(f"LIST {folder!r} refused: {data!r}")
    return any(isinstance(entry, bytes | tuple) for entry in data)


def ensure_folder(client: imaplib.IMAP4, folder: str) -> None:
    """Create ``folder`` unless it exists; a refusal raises with the server's words."""
    if folder_exists(client, folder):
        return
    typ, data = client.create(quote(folder))
    if typ != "OK" and not folder_exists(client, folder):  # created meanwhile by another client
        raise MailboxError(f"cannot create folder {folder!r}: {data!r}")
