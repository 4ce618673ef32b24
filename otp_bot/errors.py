"""otp-bot's errors, grouped by what the caller does about them.

    OtpBotError
    ├── ConfigError              fix the configuration; exit code 2
    ├── StateLocked              another daemon holds the state directory; exit code 2
    ├── InputRejected            refuse an input before sending it
    ├── ProtocolError            the API answered something unreadable; fail the draft
    ├── ApiError                 the API answered with an error envelope
    │   ├── TransientError       retry with backoff (same Idempotency-Key)
    │   ├── InvalidSolution      input burnt: next form, else wait for a fresh e-mail
    │   ├── ExpiredLink          publish again (bounded)
    │   ├── AlreadyPerformed     the draft is published (idempotent success)
    │   ├── AccountError         fail the draft, park the account, say so loudly
    │   └── DraftError           fail the draft with the error type
    ├── MailboxError             reconnect with backoff
    │   └── MailboxAuthError     login refused: its own, loud state
    └── StoreError               the state database failed

``classify(status, type)`` is the one table from the API's ``errors/...``
strings to these classes (docs/lifecycle.md, "What each API answer makes the bot do").
"""

from __future__ import annotations

from dataclasses import dataclass


class OtpBotError(Exception):
    """Base of every error otp-bot raises on purpose.

    ``hint`` says, in plain words, what the operator can do about it (the CLI
    and ``otp-bot check`` print it under the message).
    """

    def __init__(self, *args: object, hint: str = "") -> None:
        super().__init__(*args)
        self.hint = hint


class ConfigError(OtpBotError):
    """A setting is missing or invalid; the message names the variable."""


class StateLocked(OtpBotError):
    """Another daemon holds the state directory's lock (a restart would not help)."""


class InputRejected(OtpBotError, ValueError):
    """An input (draft id, code, link) is not fit to be sent."""


class ProtocolError(OtpBotError):
    """The API's answer could not be understood (not JSON, unknown object, ...)."""


class MailboxError(OtpBotError):
    """The IMAP connection failed; the watcher reconnects."""


class MailboxAuthError(MailboxError):
    """The IMAP server refused our credentials."""


class StoreError(OtpBotError):
    """The state database could not be read or written."""


@dataclass(frozen=True, slots=True)
class ApiProblem:
    """What an API error envelope said, whichever of the two shapes it had."""

    status: int
    type: str  # e.g. "errors/expired_link"; "" when the envelope had none
    title: str = ""
    detail: str = ""
    request_id: str = ""
    retry_after: float | None = None  # seconds, from Retry-After


class ApiError(OtpBotError):
    """An error envelope from postpress."""

    def __init__(self, problem: ApiProblem, *, known: bool = True) -> None:
        self.problem = problem
        self.known = known  # False: the type was not in our table
        label = problem.type or f"HTTP {problem.status}"
        text = f"{label} (HTTP {problem.status})"
        if problem.title:
            text += f": {problem.title}"
        if problem.detail:
            text += f" - {problem.detail}"
        super().__init__(text)

    @property
    def type(self) -> str:
        return self.problem.type or f"http_{self.problem.status}"


class TransientError(ApiError):
    """Rate limit, provider trouble, gateway timeout: worth retrying."""


class InvalidSolution(ApiError):
    """The submitted input did not pass; it must never be sent again."""


class ExpiredLink(ApiError):
    """The verification link expired; publish again for a fresh e-mail."""


class AlreadyPerformed(ApiError):
    """The draft was already published."""


class AccountError(ApiError):
    """Credentials or the account itself are unusable until a human acts."""


class DraftError(ApiError):
    """This draft cannot go further; fail it with the error type."""


_ACCOUNT_TYPES = {
    "missing_credentials",
    "multiple_sessions",
    "wrong_account",
    "invalid_credentials",
    "invalid_proxy_credentials",
    "expired_credentials",
    "insufficient_privileges",
    "disconnected_account",
    "disconnected_feature",
    "invalid_credentials_but_valid_account_imap",
    # 403: authenticated, but the account may not act.
    "insufficient_permissions",
    "account_restricted",
    "account_mismatch",
    "unknown_authentication_context",
    "session_mismatch",
    "feature_not_subscribed",
    "subscription_required",
    "resource_access_restricted",
    "action_required",
    # 500: the login intent was killed; retrying cannot revive it.
    "authentication_intent_error",
}

_DRAFT_TYPES = {
    # 400
    "invalid_parameters",
    "malformed_request",
    "content_too_large",
    "invalid_url",
    "too_many_characters",
    "unescaped_characters",
    "missing_parameters",
    "limit_too_high",
    # 401
    "checkpoint_error",
    # 404
    "resource_not_found",
    "invalid_resource_identifier",
    # 422 other than action_already_performed
    "invalid_account",
    "unprocessable_entity",
    "account_configuration_error",
}

_TRANSIENT_TYPES = {
    "unexpected_error",
    "provider_error",
    "no_client_session",
    "no_channel",
    "no_handler",
    "network_down",
    "service_unavailable",
    "request_timeout",
}

# Every known errors/... type (without the prefix) and its class.
ERROR_TYPES: dict[str, type[ApiError]] = {
    **dict.fromkeys(_ACCOUNT_TYPES, AccountError),
    **dict.fromkeys(_DRAFT_TYPES, DraftError),
    **dict.fromkeys(_TRANSIENT_TYPES, TransientError),
    "invalid_checkpoint_solution": InvalidSolution,
    "expired_link": ExpiredLink,
    "action_already_performed": AlreadyPerformed,
}


def _by_status(status: int) -> type[ApiError]:
    if status == 429 or status >= 500:
        return TransientError
    if status in (401, 403):
        return AccountError
    return DraftError


def classify(problem: ApiProblem) -> ApiError:
    """Turn an error envelope into the error the caller acts on."""
    if problem.status == 429:
        return TransientError(problem)
    name = problem.type.removeprefix("errors/")
    cls = ERROR_TYPES.get(name)
    if cls is None:
        return _by_status(problem.status)(problem, known=False)
    return cls(problem)
