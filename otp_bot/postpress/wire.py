"""postpress's wire format: request bodies out, answers in; pure functions.

``decode_answer`` turns a 2xx body into ``Published | Checkpoint`` (on its
``object`` field); ``decode_problem`` turns an error answer into the
``ApiError`` the caller acts on, whichever of the two envelopes it used:

- ``{"title", "detail"?, "instance"?, "type": "errors/...", "status"}``
- ``{"error": {"code", "message", "request_id"}}``

An error answer without a readable envelope (a proxy's HTML page) falls back
on its status class when that class is retried (429, 5xx); otherwise it is a
``ProtocolError``. Messages name what was wrong and never quote the body.

(Over 250 lines: every body and answer of the three endpoints, and both error
envelopes, as pure functions side by side.)
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from otp_bot.errors import ApiError, ApiProblem, InputRejected, ProtocolError, classify
from otp_bot.vocabulary import CheckpointType, PublishMode, PublishService

PUBLISHED = "LinkedinJobPostingPublished"
ACCOUNT = "Account"
CHECKPOINT = "LinkedinJobPostingPublishCheckpoint"
# Fields of an envelope are short; longer values are cut, not trusted.
_MAX_FIELD = 500


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """The optional part of a publish request body."""

    mode: str = PublishMode.FREE
    service: str = PublishService.CLASSIC
    hiring_photo_frame: bool | None = None
    bypass_email_verification: bool | None = None
    budget: Mapping[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": self.mode, "service": self.service}
        for name in ("hiring_photo_frame", "bypass_email_verification", "budget"):
            value = getattr(self, name)
            if value is not None:
                body[name] = dict(value) if name == "budget" else value
        return body


@dataclass(frozen=True, slots=True)
class Published:
    """The job is live (or in LinkedIn's review, or in another job_state)."""

    job_id: str
    job_state: str  # active | draft | review | closed | paused (kept as sent)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """LinkedIn wants an input from an e-mail before it publishes."""

    job_id: str
    type: CheckpointType  # another type is a ProtocolError


Answer = Published | Checkpoint
# The publish options a draft may carry: the fields of ``PublishOptions``.
PUBLISH_OPTIONS = frozenset(field.name for field in fields(PublishOptions))

# A source whose status is this works; anything else (CREDENTIALS, ERROR,
# STOPPED, CONNECTING, ...) needs attention (docs/contract.md, "Account").
SOURCE_OK = "OK"
# An account lists a handful of sources; more are cut, not trusted.
_MAX_SOURCES = 20


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """``GET /accounts/{id}``: the connected account and its sources' statuses."""

    account_id: str
    name: str
    type: str
    sources: tuple[tuple[str, str], ...]  # (source id, status), as sent

    @property
    def usable(self) -> bool:
        """Every source says OK (and there is one): the account can publish."""
        return bool(self.sources) and all(status == SOURCE_OK for _, status in self.sources)

    @property
    def statuses(self) -> list[str]:
        return [status for _, status in self.sources]

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "type": self.type,
            "sources": [{"id": sid, "status": status} for sid, status in self.sources],
            "usable": self.usable,
        }


def options_body(options: PublishOptions | Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return PublishOptions().to_body()
    if isinstance(options, PublishOptions):
        return options.to_body()
    unknown = set(options) - PUBLISH_OPTIONS
    if unknown:
        raise InputRejected(f"unknown publish options: {', '.join(sorted(unknown))}")
    return {**PublishOptions().to_body(), **options}


def check_text(name: str, value: object, max_length: int) -> None:
    """Refuse a value that cannot be sent as-is: empty, too long, control chars."""
    if not isinstance(value, str) or not value.strip():
        raise InputRejected(f"{name} must be a non-empty string")
    if len(value) > max_length:
        raise InputRejected(f"{name} is {len(value)} characters long (at most {max_length})")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value):
        raise InputRejected(f"{name} contains control or invisible formatting characters")
    if value != value.strip():
        raise InputRejected(f"{name} has leading or trailing whitespace")


def decode_answer(raw: bytes, content_type: str, where: str) -> Answer:
    """A 2xx body -> ``Published | Checkpoint``, or ``ProtocolError``."""
    data = _json_object(raw, content_type, where, 200)
    kind = data.get("object")
    if kind == PUBLISHED:
        return Published(
            job_id=_field(data, "job_id", where),
            job_state=_field(data, "job_state", where),
        )
    if kind == CHECKPOINT:
        checkpoint_type = _field(data, "type", where)
        if checkpoint_type not in tuple(CheckpointType):
            raise ProtocolError(
                f"postpress answered the {where} with an unknown checkpoint type "
                f"{_quote(checkpoint_type)} (expected OTP or EMAIL_VERIFICATION)"
            )
        return Checkpoint(
            job_id=_field(data, "job_id", where), type=CheckpointType(checkpoint_type)
        )
    shown = f"an unknown 'object' {_quote(kind)}" if isinstance(kind, str) else "no string 'object'"
    raise ProtocolError(
        f"postpress answered the {where} with {shown} (expected {PUBLISHED} or {CHECKPOINT})"
    )


def decode_account(raw: bytes, content_type: str, where: str) -> AccountStatus:
    """A 2xx body of ``GET /accounts/{id}`` -> ``AccountStatus``, or ``ProtocolError``."""
    data = _json_object(raw, content_type, where, 200)
    if data.get("object") != ACCOUNT:
        kind = data.get("object")
        shown = f"an unknown 'object' {_quote(kind)}" if isinstance(kind, str) else "no 'object'"
        raise ProtocolError(f"postpress answered the {where} with {shown} (expected {ACCOUNT})")
    sources = data.get("sources")
    if not isinstance(sources, list):
        raise ProtocolError(f"postpress answered the {where} with an Account without 'sources'")
    return AccountStatus(
        account_id=_field(data, "id", where),
        name=_short(data.get("name")),
        type=_short(data.get("type")),
        sources=tuple(_source(item, where) for item in sources[:_MAX_SOURCES]),
    )


def _source(item: object, where: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ProtocolError(f"postpress answered the {where} with a source that is not an object")
    return _short(item.get("id")), _field(item, "status", where)


def decode_problem(
    status: int, raw: bytes, content_type: str, retry_after: str | None, where: str
) -> ApiError | ProtocolError:
    """An error answer -> the error to raise (``ApiError`` or ``ProtocolError``)."""
    if 300 <= status < 400:
        return ProtocolError(
            f"postpress answered the {where} with a redirect (HTTP {status}), which is "
            "not followed; check OTP_BOT_API_BASE_URL"
        )
    wait = parse_retry_after(retry_after) if retry_after is not None else None
    try:
        data = _json_object(raw, content_type, where, status)
        problem = _envelope(status, data, wait, where)
    except ProtocolError as exc:
        if status == 429 or status >= 500:
            # Gateways answer 502/503/504 with their own pages: by status class.
            title = f"HTTP {status} without an error envelope ({content_type or 'no type'})"
            return classify(ApiProblem(status=status, type="", title=title, retry_after=wait))
        return exc
    return classify(problem)


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """``Retry-After`` (delta-seconds or an HTTP date) -> seconds, or None if unreadable."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _envelope(status: int, data: dict[str, Any], wait: float | None, where: str) -> ApiProblem:
    nested = data.get("error")
    if isinstance(nested, dict):
        code = _short(nested.get("code"))
        return ApiProblem(
            status=status,
            type=code if not code or code.startswith("errors/") else f"errors/{code}",
            title=_short(nested.get("message")),
            request_id=_short(nested.get("request_id")),
            retry_after=wait,
        )
    if isinstance(data.get("type"), str) or isinstance(data.get("title"), str):
        return ApiProblem(
            status=status,
            type=_short(data.get("type")),
            title=_short(data.get("title")),
            detail=_short(data.get("detail")),
            request_id=_short(data.get("instance")),
            retry_after=wait,
        )
    raise ProtocolError(
        f"postpress answered the {where} with HTTP {status} and JSON that is not an error envelope"
    )


def _json_object(raw: bytes, content_type: str, where: str, status: int) -> dict[str, Any]:
    described = f"HTTP {status}, {content_type or 'no content type'}, {len(raw)} bytes"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(
            f"postpress answered the {where} with a body that is not JSON ({described})"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"postpress answered the {where} with JSON that is not an object ({described})"
        )
    return data


def _field(data: dict[str, Any], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        problem = "is missing" if value is None else "is not a non-empty string"
        raise ProtocolError(
            f"postpress answered the {where} with {data.get('object')!s:.60} "
            f"whose '{name}' {problem}"
        )
    return value[:_MAX_FIELD]


def _short(value: object) -> str:
    return value[:_MAX_FIELD] if isinstance(value, str) else ""


def _quote(value: str) -> str:
    return json.dumps(value[:60])
