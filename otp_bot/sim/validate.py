"""Request-body validation of the postpress simulator, as the contract lists it."""

from __future__ import annotations

import unicodedata
from typing import Any

# The real API's limits are not published; these are generous and documented.
MAX_BODY_BYTES = 64 * 1024
MAX_INPUT_CHARS = 2048
_PUBLISH_FIELDS = {
    "account_id",
    "mode",
    "service",
    "hiring_photo_frame",
    "bypass_email_verification",
    "budget",
}
_MODES = {"FREE", "PROMOTED", "PROMOTED_PLUS"}
_SERVICES = {"CLASSIC", "RECRUITER"}


class Invalid(Exception):
    """The body breaks the contract: answer ``errors/{kind}``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def validate_body(
    endpoint: str, body: Any, content_length: int | None, account_id: str | None
) -> None:
    """Raise ``Invalid`` unless ``body`` is a valid publish or checkpoint body."""
    if content_length is not None and content_length > MAX_BODY_BYTES:
        raise Invalid("content_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes.")
    if not isinstance(body, dict):
        raise Invalid("malformed_request", "The body must be a JSON object.")
    required = ("account_id", "input") if endpoint == "checkpoint" else ("account_id",)
    missing = [name for name in required if name not in body]
    if missing:
        raise Invalid("missing_parameters", f"Missing: {', '.join(missing)}.")
    if not isinstance(body["account_id"], str) or not body["account_id"]:
        raise Invalid("invalid_parameters", "account_id must be a non-empty string.")
    if account_id is not None and body["account_id"] != account_id:
        raise Invalid("resource_not_found", "No such account.")
    if endpoint == "checkpoint":
        _check_input(body)
    else:
        _check_publish(body)


def _check_input(body: dict[str, Any]) -> None:
    if set(body) - {"account_id", "input"}:
        raise Invalid("invalid_parameters", "Unknown fields in the body.")
    value = body["input"]
    if not isinstance(value, str) or not value.strip():
        raise Invalid("invalid_parameters", "input must be a non-empty string.")
    if len(value) > MAX_INPUT_CHARS:
        raise Invalid("too_many_characters", f"input exceeds {MAX_INPUT_CHARS} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise Invalid("unescaped_characters", "input contains control characters.")


def _check_publish(body: dict[str, Any]) -> None:
    unknown = set(body) - _PUBLISH_FIELDS
    if unknown:
        raise Invalid("invalid_parameters", f"Unknown fields: {', '.join(sorted(unknown))}.")
    if body.get("mode", "FREE") not in _MODES:
        raise Invalid("invalid_parameters", "mode must be FREE, PROMOTED or PROMOTED_PLUS.")
    if body.get("service", "CLASSIC") not in _SERVICES:
        raise Invalid("invalid_parameters", "service must be CLASSIC or RECRUITER.")
    for flag in ("hiring_photo_frame", "bypass_email_verification"):
        if flag in body and not isinstance(body[flag], bool):
            raise Invalid("invalid_parameters", f"{flag} must be a boolean.")
    if "budget" in body:
        _check_budget(body["budget"], body.get("mode", "FREE"))


def _check_budget(budget: Any, mode: str) -> None:
    if mode == "FREE":
        raise Invalid("invalid_parameters", "budget needs a promoted mode.")
    if not isinstance(budget, dict) or len(budget) != 1 or set(budget) - {"daily", "monthly"}:
        raise Invalid("invalid_parameters", 'budget must be {"daily": ...} or {"monthly": ...}.')
    amount = next(iter(budget.values()))
    if (
        not isinstance(amount, dict)
        or not isinstance(amount.get("currency"), str)
        or not isinstance(amount.get("amount"), int | float)
    ):
        raise Invalid("invalid_parameters", "budget needs a currency and an amount.")
    if amount["amount"] > 1_000_000:
        raise Invalid("limit_too_high", "budget amount exceeds the allowed maximum.")
