"""What went wrong with the mailbox, in plain words, and what to check.

imaplib, ssl and socket errors read like Python (``gaierror: [Errno -2]``,
``b'[AUTHENTICATIONFAILED] ...'``). ``plain`` turns each into words and
``hint`` into the setting to look at; the messages of ``MailboxError`` are
built from them, so logs, ``otp-bot check`` and the CLI never show a Python
name or a bytes literal.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Iterable
from typing import Any

from imap_tools.errors import UnexpectedCommandStatusError

# A server's own words are shown, but bounded: a server is outside input.
MAX_SERVER_TEXT = 200


def server_text(data: Iterable[object]) -> str:
    """The server's answer as printable text (``b'[CODE] text'`` -> ``[CODE] text``)."""
    parts = []
    for item in data:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        parts.append("".join(ch if ch.isprintable() else " " for ch in text).strip())
    joined = " ".join(p for p in parts if p)[:MAX_SERVER_TEXT]
    return joined or "no reason given"


def _tls(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, ssl.SSLError) else None
    return f"TLS failed ({reason or 'handshake error'})"


def _command(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedCommandStatusError):
        return server_text(exc.command_result[1])
    return server_text(exc.args)


# (error class, its words, what to check), most specific first.
_TABLE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Any, str], ...] = (
    (
        socket.gaierror,
        "the host name cannot be resolved (DNS)",
        "check OTP_BOT_IMAP_HOST: this machine cannot resolve it",
    ),
    (
        ssl.SSLCertVerificationError,
        lambda exc: f"the server's TLS certificate is not trusted ({exc.verify_message})",
        "a private CA: set OTP_BOT_IMAP_CA_FILE to its certificate; else check that "
        "OTP_BOT_IMAP_HOST is the name on the server's certificate",
    ),
    (
        ssl.SSLError,
        _tls,
        "the port may not speak TLS at once: for port 143 set OTP_BOT_IMAP_SECURITY=starttls "
        "(tls is for port 993)",
    ),
    (
        ConnectionRefusedError,
        "the connection was refused (nothing listens on that port)",
        "check OTP_BOT_IMAP_PORT: 993 for tls, 143 for starttls",
    ),
    (
        TimeoutError,
        "no answer in time",
        "check OTP_BOT_IMAP_HOST, OTP_BOT_IMAP_PORT and any firewall on the way",
    ),
    (
        (ConnectionResetError, BrokenPipeError, EOFError, imaplib.IMAP4.abort),
        "the server closed the connection",
        "",
    ),
    ((UnexpectedCommandStatusError, imaplib.IMAP4.error), _command, ""),
    (OSError, lambda exc: exc.strerror or "network error", ""),
)


def _row(exc: BaseException) -> tuple[Any, str]:
    for kind, words, what in _TABLE:
        if isinstance(exc, kind):
            return words, what
    return (lambda e: server_text(e.args)), ""


def plain(exc: BaseException) -> str:
    """An error of imaplib, imap-tools, ssl or socket, in words."""
    words, _hint = _row(exc)
    return words if isinstance(words, str) else str(words(exc))


def hint(exc: BaseException) -> str:
    """The setting to check for a connection error ("" when there is none to name)."""
    return _row(exc)[1]


def login_hint(oauth2: bool) -> str:
    """What to check when the server refused the login."""
    if oauth2:
        return (
            "check OTP_BOT_IMAP_USER and the token OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND prints "
            "(its scope must include IMAP)"
        )
    return (
        "check OTP_BOT_IMAP_USER and OTP_BOT_IMAP_PASSWORD (Gmail and Microsoft 365 need an "
        "app password, or OAuth2)"
    )
