"""``otp-bot oauth2-token``: a token command for XOAUTH2 mailboxes (Gmail, Microsoft 365).

``OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND`` runs a command that prints an access
token. This module is that command for the two common providers, so an
operator needs no helper of their own: it trades a refresh token (or, for
Microsoft 365 app-only access, the client credentials) for an access token at
the provider's token endpoint (RFC 6749, sections 6 and 4.4) and prints it.

Secrets never appear in argv: the client secret and the refresh token are read
from files (relative names are looked up in ``$CREDENTIALS_DIRECTORY``, as
systemd's ``LoadCredential=`` provides them). Providers may rotate the refresh
token on use (Microsoft does); with ``--cache FILE`` the newest one is kept
there (0600, replaced atomically) and preferred on the next run. Nothing but
the access token is printed on stdout; errors name the provider's error code,
never a token. The answer is bounded in size and time. The standard library's
HTTP client is enough for one form POST, and keeps this command light.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# The providers' token endpoints and the scopes IMAP needs.
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
GOOGLE_SCOPE = "https://mail.google.com/"
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105 (a URL)
MICROSOFT_DELEGATED_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
MICROSOFT_APP_SCOPE = "https://outlook.office365.com/.default"
# A token answer is a few kB; anything larger is not one.
MAX_ANSWER_BYTES = 64 * 1024
TIMEOUT = 30.0


class TokenError(Exception):
    """The token could not be obtained; the message is safe to print."""


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What to send to the token endpoint (secrets already read from their files)."""

    token_url: str
    form: dict[str, str]
    cache: Path | None


def secret_file(name: str) -> str:
    """A secret read from a file; a relative name is looked up in $CREDENTIALS_DIRECTORY."""
    path = Path(name)
    if not path.is_absolute() and os.environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(os.environ["CREDENTIALS_DIRECTORY"]) / path
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise TokenError(f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise TokenError(f"{path} is empty")
    return value


def check_token_url(url: str) -> str:
    """https anywhere; plain http only to a loopback address (a local test endpoint)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        if host == "localhost" or _is_loopback(host):
            return url
    raise TokenError("--token-url must be https (plain http only for a loopback address)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_request(
    *,
    provider: str,
    client_id: str,
    client_secret_file: str | None,
    refresh_token_file: str | None,
    client_credentials: bool,
    tenant: str,
    token_url: str | None,
    scope: str | None,
    cache: Path | None,
) -> TokenRequest:
    """The form for a refresh-token grant, or Microsoft's client-credentials grant."""
    if provider == "google":
        url, default_scope = GOOGLE_TOKEN_URL, GOOGLE_SCOPE
    else:
        url = MICROSOFT_TOKEN_URL.format(tenant=urllib.parse.quote(tenant, safe=""))
        default_scope = MICROSOFT_APP_SCOPE if client_credentials else MICROSOFT_DELEGATED_SCOPE
    form = {"client_id": client_id, "scope": scope or default_scope}
    if client_secret_file:
        form["client_secret"] = secret_file(client_secret_file)
    if client_credentials:
        if provider != "microsoft" or "client_secret" not in form:
            raise TokenError("--client-credentials needs --provider microsoft and a client secret")
        form["grant_type"] = "client_credentials"
    else:
        if not refresh_token_file:
            raise TokenError("give --refresh-token-file (or --client-credentials)")
        form["grant_type"] = "refresh_token"
        form["refresh_token"] = _cached(cache) or secret_file(refresh_token_file)
    return TokenRequest(check_token_url(token_url or url), form, cache)


def _cached(cache: Path | None) -> str | None:
    """The refresh token a previous run stored, if any."""
    if cache is None:
        return None
    try:
        return cache.read_text().strip() or None
    except OSError:
        return None


def fetch_token(request: TokenRequest) -> str:
    """POST the form, return the access token; keep a rotated refresh token in the cache."""
    body = urllib.parse.urlencode(request.form).encode()
    http = urllib.request.Request(  # noqa: S310 (the scheme is checked in check_token_url)
        request.token_url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    answer = _post(http)
    token = answer.get("access_token")
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        raise TokenError("the token endpoint answered without an access_token")
    rotated = answer.get("refresh_token")
    if request.cache is not None and isinstance(rotated, str) and rotated:
        _store(request.cache, rotated)
    return token


def _post(http: urllib.request.Request) -> dict[str, object]:
    try:
        with _opener().open(http, timeout=TIMEOUT) as response:
            raw = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raw = exc.read(MAX_ANSWER_BYTES + 1)
        raise TokenError(
            f"the token endpoint refused: HTTP {exc.code}{_oauth_error(raw)}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TokenError(f"cannot reach the token endpoint: {reason}") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise TokenError("the token endpoint's answer is too large")
    try:
        answer = json.loads(raw)
    except ValueError:
        raise TokenError("the token endpoint's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise TokenError("the token endpoint's answer is not a JSON object")
    return answer


def _opener() -> urllib.request.OpenerDirector:
    """No redirects: a token request goes to the configured endpoint or nowhere."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _oauth_error(raw: bytes) -> str:
    """`: invalid_grant` from an RFC 6749 error answer (only the code: it holds no secret)."""
    try:
        code = json.loads(raw[:MAX_ANSWER_BYTES]).get("error")
    except (ValueError, AttributeError):
        return ""
    if isinstance(code, str) and code.isascii() and code.replace("_", "").isalnum():
        return f": {code[:64]}"
    return ""


def _store(cache: Path, refresh_token: str) -> None:
    """Write the newest refresh token, 0600, replacing the old one atomically."""
    temporary = cache.with_name(cache.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(refresh_token)
    os.replace(temporary, cache)
