"""Asking a logged-in server what it offers: CAPABILITY, then NAMESPACE or LIST.

Done after every login (imaplib's capability list is the pre-login one, and
many servers announce MOVE and UIDPLUS only after login). A NO or BAD answer
to NAMESPACE or LIST is not a connection failure: the bot falls back to LIST,
then to a flat name, so a server that announces NAMESPACE and then refuses it
cannot make every connection fail.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from typing import Any

from otp_bot.errors import MailboxError
from otp_bot.imap import server as info
from otp_bot.imap.server import Namespace, ServerInfo

# Every account on one server gets the same answer: the mailboxes share one
# ServerInfo per distinct answer instead of each holding its own ~40 capability
# names (4 kB a mailbox: 4 MB at 1,000). Bounded: a server answering differently
# every time gets no more entries than this.
KNOWN_ANSWERS = 64
_known: dict[ServerInfo, ServerInfo] = {}


def learn(client: imaplib.IMAP4) -> ServerInfo:
    """Post-login capabilities and the personal namespace (or the root's delimiter).

    The capabilities are those the login's answer carried (``OK [CAPABILITY
    ...]``, which RFC 3501 6.2.3 lets a client use without asking: Dovecot,
    Gmail and most servers send it), else a CAPABILITY command's: one round
    trip less per connection where the server offers them.
    """
    names = _announced(client) or _asked(client)
    namespace = None
    if "NAMESPACE" in names:
        typ, data = _refusal_as_no(client.namespace)
        namespace = info.personal_namespace(data) if typ == "OK" else None
    if namespace is None:  # no NAMESPACE: the root's delimiter, no prefix
        typ, data = _refusal_as_no(lambda: client.list('""', '""'))
        namespace = Namespace("", info.list_delimiter(data) if typ == "OK" else None)
    return shared(ServerInfo(names, namespace))


def shared(server: ServerInfo) -> ServerInfo:
    """An equal ServerInfo seen before, else this one (remembered while there is room)."""
    known = _known.get(server)
    if known is not None:
        return known
    if len(_known) < KNOWN_ANSWERS:
        return _known.setdefault(server, server)  # atomic: pool threads may race here
    return server


def _announced(client: imaplib.IMAP4) -> frozenset[str]:
    """The capabilities announced since the login started (``login`` clears older ones)."""
    data = client.untagged_responses.pop("CAPABILITY", None)
    return info.capabilities(data) if data else frozenset()


def _asked(client: imaplib.IMAP4) -> frozenset[str]:
    typ, data = client.capability()
    if typ != "OK":
        raise MailboxError(f"CAPABILITY refused: {data!r}")
    return info.capabilities(data)


def _refusal_as_no(command: Callable[[], tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """A NO/BAD answer as ("NO", []) rather than imaplib's exception; a lost connection raises."""
    try:
        return command()
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        return "NO", []
