"""What the postpress simulator does for one draft: a ``Script``.

A script is a frozen value. Tests build it directly, ``POST /_sim/script``
sends it as JSON (``Script.from_dict``), and drafts without one get a script
from their id (``script_for_draft``, the conventions in the README).

(Over 250 lines: the ``Script`` value, its JSON form and the draft-id
conventions describe one simulated draft together.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# Every errors/... type of the contract and its HTTP status (docs/contract.md).
ERROR_STATUS: dict[str, int] = {
    **dict.fromkeys(
        [
            "invalid_parameters",
            "malformed_request",
            "content_too_large",
            "invalid_url",
            "too_many_characters",
            "unescaped_characters",
            "missing_parameters",
            "limit_too_high",
        ],
        400,
    ),
    **dict.fromkeys(
        [
            "missing_credentials",
            "multiple_sessions",
            "wrong_account",
            "invalid_credentials",
            "invalid_proxy_credentials",
            "invalid_checkpoint_solution",
            "checkpoint_error",
            "expired_credentials",
            "expired_link",
            "insufficient_privileges",
            "disconnected_account",
            "disconnected_feature",
            "invalid_credentials_but_valid_account_imap",
        ],
        401,
    ),
    **dict.fromkeys(
        [
            "insufficient_permissions",
            "account_restricted",
            "account_mismatch",
            "unknown_authentication_context",
            "session_mismatch",
            "feature_not_subscribed",
            "subscription_required",
            "resource_access_restricted",
            "action_required",
        ],
        403,
    ),
    **dict.fromkeys(["resource_not_found", "invalid_resource_identifier"], 404),
    **dict.fromkeys(
        [
            "invalid_account",
            "unprocessable_entity",
            "account_configuration_error",
            "action_already_performed",
        ],
        422,
    ),
    **dict.fromkeys(["unexpected_error", "provider_error", "authentication_intent_error"], 500),
    **dict.fromkeys(
        ["no_client_session", "no_channel", "no_handler", "network_down", "service_unavailable"],
        503,
    ),
    "request_timeout": 504,
}
CHECKPOINT_TYPES = ("OTP", "EMAIL_VERIFICATION")
ENVELOPES = ("problem", "error")


@dataclass(frozen=True, slots=True)
class Fault:
    """One answer served instead of the real one (nothing is processed or stored).

    ``type`` is an ``errors/...`` type (status from the contract unless
    ``status`` is given); ``body`` replaces the envelope with raw text, to
    serve malformed answers (with ``status=200`` too).
    """

    type: str = "errors/service_unavailable"
    status: int | None = None
    envelope: str = "problem"  # "problem": {title, type, status}; "error": {"error": {...}}
    retry_after: str | None = None  # Retry-After header value, as sent
    body: str | None = None
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to wait before answering (client timeouts)
    endpoint: str | None = None  # "publish" | "checkpoint" | None (either)
    headers: Mapping[str, str] = field(default_factory=dict)  # extra headers (Location, ...)

    def __post_init__(self) -> None:
        if self.envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES}")
        if self.status is None and self.body is None and self.name not in ERROR_STATUS:
            raise ValueError(f"{self.type} is not a contract error type: give its status")
        if self.endpoint not in (None, "publish", "checkpoint"):
            raise ValueError("endpoint must be publish, checkpoint or null")

    @property
    def name(self) -> str:
        return self.type.removeprefix("errors/")

    @property
    def http_status(self) -> int:
        return self.status if self.status is not None else ERROR_STATUS.get(self.name, 500)


@dataclass(frozen=True, slots=True)
class Script:
    """How the simulated LinkedIn treats one draft."""

    # Checkpoints issued in turn (publish issues the first; each solved one the
    # next); empty: publish succeeds at once.
    checkpoints: tuple[str, ...] = ("OTP",)
    job_state: str = "active"
    # Served in order, one per request for this draft, before anything else.
    faults: tuple[Fault, ...] = ()
    # The next N correct inputs are answered invalid_checkpoint_solution (and burnt).
    invalid_solutions: int = 0
    # The next N correct inputs are answered expired_link (publish again for a new mail).
    expired_links: int = 0
    # The next N requests are processed and remembered, then answered 504.
    timeout_after_accept: int = 0
    timeout_endpoint: str | None = None  # ... only for "publish" or "checkpoint" requests
    mail: bool = True  # False: the checkpoint's e-mail never comes
    mail_delay: float = 0.0  # seconds between the checkpoint and its e-mail
    # The e-mails of the next N checkpoints come late_delay seconds late instead
    # (e.g. after the bot's code timeout: it publishes again, then the old one lands).
    late_mails: int = 0
    late_delay: float = 0.0
    # The genuine e-mail is APPENDed this many more times (same bytes, same
    # Message-ID), duplicate_delay seconds apart, as a mail system's retry does.
    mail_duplicates: int = 0
    duplicate_delay: float = 0.0
    # A failed APPEND (mail server down) is retried for this long, as an MTA's
    # queue would; 0: the e-mail is lost at the first failure.
    mail_retry: float = 0.0
    # The next N requests (after faults) are processed and answered slow_delay late.
    slow_answers: int = 0
    slow_delay: float = 1.0
    decoy: bool = False  # a spoofed e-mail with another code arrives first
    # "lookalike" sender domain, "unsigned" linkedin.com, or a signed "member" message
    decoy_style: str = "lookalike"
    # What an EMAIL_VERIFICATION checkpoint accepts: "link", "pin" or both.
    accept: tuple[str, ...] = ("link", "pin")
    already_published: bool = False  # the draft was published by someone else
    # The draft's first request disconnects the account (this errors/... type,
    # answered to every publish and checkpoint of every draft until reconnected) ...
    disconnect_account: str | None = None
    # ... and the account reconnects by itself this many seconds later (None: never).
    reconnect_after: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # free notes, echoed by /_sim

    def __post_init__(self) -> None:
        if any(kind not in CHECKPOINT_TYPES for kind in self.checkpoints):
            raise ValueError(f"checkpoints must be among {CHECKPOINT_TYPES}")
        if self.decoy_style not in ("lookalike", "unsigned", "member"):
            raise ValueError("decoy_style must be lookalike, unsigned or member")
        if not self.accept or any(form not in ("link", "pin") for form in self.accept):
            raise ValueError("accept must list link and/or pin")
        counts = (
            self.invalid_solutions,
            self.expired_links,
            self.timeout_after_accept,
            self.mail_duplicates,
            self.slow_answers,
            self.late_mails,
        )
        if self.timeout_endpoint not in (None, "publish", "checkpoint"):
            raise ValueError("timeout_endpoint must be publish, checkpoint or null")
        delays = (
            self.mail_delay,
            self.duplicate_delay,
            self.mail_retry,
            self.slow_delay,
            self.late_delay,
        )
        if min(counts) < 0 or min(delays) < 0 or (self.reconnect_after or 0) < 0:
            raise ValueError("counts and delays must not be negative")
        name = (self.disconnect_account or "").removeprefix("errors/")
        if self.disconnect_account is not None and (
            ERROR_STATUS.get(name) not in (401, 403) or "checkpoint" in name or "link" in name
        ):
            raise ValueError("disconnect_account must be an account-level (401/403) error type")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        """Build a script from JSON; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown script keys: {', '.join(sorted(unknown))}")
        values = dict(data)
        for key in ("checkpoints", "accept"):
            if key in values:
                values[key] = tuple(values[key])
        if "faults" in values:
            values["faults"] = tuple(_fault(item) for item in values["faults"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def _fault(data: object) -> Fault:
    if isinstance(data, str):
        return Fault(type=data)
    if not isinstance(data, Mapping):
        raise TypeError("a fault is an errors/... string or an object")
    known = {f.name for f in fields(Fault)}
    if set(data) - known:
        raise ValueError(f"unknown fault keys: {', '.join(sorted(set(data) - known))}")
    return Fault(**data)


_TOKEN = re.compile(r"[a-z0-9]+")
# Words in a draft id that add faults (served once each, in this order).
_FAULT_WORDS: dict[str, tuple[Fault, ...]] = {
    "flaky": (Fault("errors/service_unavailable"), Fault("errors/provider_error")),
    "ratelimit": (Fault("errors/rate_limited", status=429, retry_after="2"),),
    "restricted": (Fault("errors/account_restricted", endpoint="publish"),),
    "disconnected": (Fault("errors/disconnected_account", endpoint="publish"),),
    "expiredcreds": (Fault("errors/expired_credentials", endpoint="publish"),),
    "notfound": (Fault("errors/resource_not_found"),),
}
# The e-mail comes this late for a draft id with "slowmail".
_SLOW_MAIL_SECONDS = 20.0


def _decoy_style(words: set[str]) -> str:
    if "member" in words:
        return "member"
    return "unsigned" if "unsigned" in words else "lookalike"


def script_for_draft(draft_id: str) -> Script:
    """The script a draft gets from words in its id (see README, "Dry run")."""
    words = set(_TOKEN.findall(draft_id.lower()))
    checkpoints: tuple[str, ...] = ("OTP",)
    if words & {"verify", "email"}:
        checkpoints = ("EMAIL_VERIFICATION",)
    if "chain" in words:
        checkpoints = ("EMAIL_VERIFICATION", "OTP")
    if "direct" in words:
        checkpoints = ()
    faults = [fault for word, group in _FAULT_WORDS.items() if word in words for fault in group]
    return Script(
        checkpoints=checkpoints,
        job_state="review" if "review" in words else "active",
        faults=tuple(faults),
        invalid_solutions=int("invalid" in words),
        expired_links=int("expired" in words),
        timeout_after_accept=int("timeout" in words),
        mail="nomail" not in words,
        mail_delay=_SLOW_MAIL_SECONDS if "slowmail" in words else 0.0,
        decoy=bool(words & {"decoy", "unsigned", "member"}),
        decoy_style=_decoy_style(words),
        already_published="published" in words,
    )
