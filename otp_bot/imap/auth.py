"""Credentials for the IMAP login: TLS contexts and XOAUTH2 access tokens.

A token comes from a configured command (run without a shell) that prints it on
stdout. It is cached for ``imap_oauth2_token_lifetime`` and fetched again after
that, or at once after the server refused it. Tokens are registered with the
log redaction before anything else sees them; the command's stderr is never
logged (a helper may print its refresh token there).
"""

from __future__ import annotations

import functools
import shlex
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from otp_bot import logs
from otp_bot.config import Settings
from otp_bot.errors import MailboxAuthError

log = structlog.get_logger(__name__)

# A token helper may talk to an OAuth2 endpoint over the network; it gets this
# long before the login attempt counts as failed.
TOKEN_COMMAND_TIMEOUT = 60.0
# TLS contexts kept (one per CA file in use; a daemon's accounts name a few).
CONTEXTS = 16


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name verified against the system CAs plus ``ca_file``.

    One context per CA file (as it is on disk now), shared by every connection
    that uses it: a context holds the parsed system CA store, about 0.8 MB, so
    one per connection made 1,000 TLS mailboxes cost 0.8 GB. A CA file that
    changes on disk gets a new context at the next connection.
    """
    if ca_file is None:
        return _context(None, None)
    found = ca_file.stat()
    return _context(ca_file, (found.st_mtime_ns, found.st_size))


@functools.lru_cache(maxsize=CONTEXTS)
def _context(ca_file: Path | None, _version: tuple[int, int] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class TokenSource:
    """An OAuth2 access token printed by a command, refreshed before it expires."""

    def __init__(self, command: str, lifetime: float) -> None:
        self._command = command
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._token: str | None = None
        self._obtained = 0.0

    def get(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() - self._obtained >= self._lifetime:
                self._token = self._run()
                self._obtained = time.monotonic()
            return self._token

    def invalidate(self) -> None:
        """Forget the token (the server refused it); the next ``get`` runs the command."""
        with self._lock:
            self._token = None

    def _run(self) -> str:
        try:
            argv = shlex.split(self._command)
        except ValueError as exc:
            raise MailboxAuthError(
                f"OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND cannot be split: {exc}"
            ) from None
        if not argv:
            raise MailboxAuthError("OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND is empty")
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=TOKEN_COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise MailboxAuthError(
                f"token command {argv[0]} did not finish within {TOKEN_COMMAND_TIMEOUT:.0f}s"
            ) from None
        except OSError as exc:
            raise MailboxAuthError(f"token command {argv[0]} cannot run: {exc.strerror}") from None
        if done.returncode != 0:
            raise MailboxAuthError(
                f"token command {argv[0]} exited with status {done.returncode} "
                f"({len(done.stderr)} bytes on stderr, not shown: they may hold secrets)"
            )
        token = done.stdout.decode("utf-8", "replace").strip()
        if not token or any(ch.isspace() for ch in token):
            raise MailboxAuthError(f"token command {argv[0]} printed no single-line token")
        # Keyed by this source: only its newest tokens stay registered.
        logs.register_secrets([token], owner=f"oauth2:{id(self)}")
        log.info("mailbox_token_obtained", refresh_in=self._lifetime)
        return token


def xoauth2_responder(user: str, token: str) -> Callable[[bytes], bytes]:
    """SASL XOAUTH2: the bearer string first, then empty answers to error challenges.

    A refusal arrives as a challenge carrying a JSON error; the client must
    answer it with an empty line, after which the server says NO.
    """
    answers = [f"user={user}\x01auth=Bearer {token}\x01\x01".encode()]

    def respond(_challenge: bytes) -> bytes:
        return answers.pop() if answers else b""

    return respond


def tokens_for(settings: Settings) -> TokenSource | None:
    command = settings.imap_oauth2_token_command
    return TokenSource(command, settings.imap_oauth2_token_lifetime) if command else None
