"""Opening an IMAP connection and logging in: TLS/STARTTLS/none, password or XOAUTH2.

A refused login raises ``MailboxAuthError`` (its own, loud state); anything
else, including a server that says it is busy, raises ``MailboxError``.
"""

from __future__ import annotations

import imaplib
import socket

import structlog
from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from otp_bot.config import ImapSecurity, Settings
from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.imap.auth import TokenSource, tls_context, xoauth2_responder
from otp_bot.imap.explain import hint, login_hint, plain
from otp_bot.imap.wire import LIBRARY_ERRORS, translated

log = structlog.get_logger(__name__)

# TCP keepalive finds a dead peer under a silent IDLE in about 60 + 3 * 20 s.
KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 20, "TCP_KEEPCNT": 3}
# Login refusals with these response codes are the server's trouble, not ours.
TRANSIENT_LOGIN_CODES = ("[UNAVAILABLE]", "[SERVERBUG]", "[INUSE]", "[LIMIT]")


def connect(settings: Settings) -> BaseMailBox:
    """A connected (not yet logged-in) mailbox; every socket call has a timeout."""
    with translated(f"connect to {settings.imap_host}:{settings.imap_port}"):
        box = _open(settings)
        _keepalive(box.client.sock)
        return box


def _open(s: Settings) -> BaseMailBox:
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


def login(box: BaseMailBox, settings: Settings, tokens: TokenSource | None) -> None:
    # What the server announces from here on is its post-login word (learn reads it).
    box.client.untagged_responses.pop("CAPABILITY", None)
    try:
        if tokens is None:
            _password_login(box, settings)
        else:
            _xoauth2_login(box, settings.imap_user, tokens)
    except imaplib.IMAP4.abort as exc:
        raise MailboxError(f"login: connection lost: {plain(exc)}") from exc
    except (imaplib.IMAP4.error, MailboxLoginError) as exc:
        text = plain(exc)
        if any(code in text for code in TRANSIENT_LOGIN_CODES):
            raise MailboxError(f"login: server busy: {text}") from exc
        raise MailboxAuthError(
            f"login refused for {settings.imap_user}: {text}",
            hint=login_hint(oauth2=tokens is not None),
        ) from exc
    except LIBRARY_ERRORS as exc:
        raise MailboxError(f"login: {plain(exc)}", hint=hint(exc)) from exc


def _password_login(box: BaseMailBox, settings: Settings) -> None:
    secret = settings.imap_password
    password = secret.get_secret_value() if secret is not None else ""
    if password.isascii() and settings.imap_user.isascii():
        box.login(settings.imap_user, password, initial_folder=None)
    else:  # LOGIN cannot carry UTF-8; AUTHENTICATE PLAIN can
        box.login_utf8(settings.imap_user, password, initial_folder=None)


def _xoauth2_login(box: BaseMailBox, user: str, tokens: TokenSource) -> None:
    client: imaplib.IMAP4 = box.client
    try:
        client.authenticate("XOAUTH2", xoauth2_responder(user, tokens.get()))
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        # The token may have been revoked or expired early: one fresh try.
        log.warning("mailbox_token_refused", error=str(exc))
        tokens.invalidate()
        client.authenticate("XOAUTH2", xoauth2_responder(user, tokens.get()))


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE.items():
        if hasattr(socket, name):  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
