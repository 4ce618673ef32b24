"""Held accounts and API outages: the pure part (what a probe means, when to try again).

An account is *held* after an account-level error (``disconnected_account``,
``expired_credentials``, ``account_restricted``, ...): its drafts wait
instead of failing, and the account is probed with ``GET /accounts/{id}``,
first after ``hold_probe_min`` seconds, then twice as late each time up to
``hold_probe_max``. When the account read is not offered (404, an unreadable
answer), the probe is publishing the oldest held draft again: any answer but
an account-level error shows the account usable.

An *outage* (network errors, 5xx, timeouts past the client's retry budget)
moves the draft in the middle of a call to ``retrying``; the call is re-sent
``outage_retry_min`` seconds later, then twice as late each time up to
``outage_retry_max``, until ``draft_deadline`` after the outage began.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from otp_bot.errors import AccountError, OtpBotError, TransientError
from otp_bot.postpress.wire import AccountStatus


class Verdict(StrEnum):
    """What one probe of a held account showed."""

    USABLE = "usable"  # every source OK: resume the queue
    HELD = "held"  # the account still needs attention (a status, or 401/403)
    UNREACHABLE = "unreachable"  # the API did not answer (network, 5xx)
    NO_READ = "no_read"  # the account read is not offered: probe by publishing


def verdict(outcome: AccountStatus | OtpBotError) -> Verdict:
    """What the answer to ``GET /accounts/{id}`` means for a held account."""
    if isinstance(outcome, AccountStatus):
        return Verdict.USABLE if outcome.usable else Verdict.HELD
    if isinstance(outcome, AccountError):
        return Verdict.HELD
    if isinstance(outcome, TransientError):
        return Verdict.UNREACHABLE
    return Verdict.NO_READ


def backoff(failures: int, low: float, high: float) -> timedelta:
    """``low`` seconds after the first failure, doubling, never above ``high``."""
    return timedelta(seconds=min(high, low * 2 ** max(0, min(failures - 1, 30))))


@dataclass(slots=True)
class AccountHold:
    """An account held since ``since`` for ``error``; probed at ``next_probe``."""

    error: str
    detail: str
    since: datetime
    next_probe: datetime
    probes: int = 0  # probes that found the account still unusable
    probing: str | None = None  # the held draft published again as the probe (NO_READ)

    def probed(self, now: datetime, low: float, high: float) -> None:
        """One more probe found the account unusable: the next one comes later."""
        self.probes += 1
        self.next_probe = now + backoff(self.probes, low, high)

    def to_dict(self, now: datetime) -> dict[str, object]:
        return {
            "error": self.error,
            "detail": self.detail,
            "since": self.since.isoformat(),
            "probes": self.probes,
            "next_probe_in": round(max(0.0, (self.next_probe - now).total_seconds()), 1),
        }


@dataclass(slots=True)
class Outage:
    """The API failing since ``since`` (``error`` the last failure); re-sent at ``next_try``."""

    error: str
    since: datetime
    next_try: datetime
    failures: int = 1

    def failed(self, error: str, now: datetime, low: float, high: float) -> None:
        self.error, self.failures = error, self.failures + 1
        self.next_try = now + backoff(self.failures, low, high)

    def to_dict(self) -> dict[str, object]:
        return {"error": self.error, "since": self.since.isoformat(), "failures": self.failures}
