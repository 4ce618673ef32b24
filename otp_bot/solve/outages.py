"""API outages: a call the API did not answer is sent again, with backoff, until a deadline.

An outage (network errors, 5xx, timeouts past the client's own retries)
moves the draft in the middle of a call to ``retrying`` (``respond``).
``Outages`` then decides when that same call (same idempotency key, same
input) is sent again: ``OTP_BOT_OUTAGE_RETRY_MIN`` seconds after the first
failure, twice as late each time, up to ``OTP_BOT_OUTAGE_RETRY_MAX``. A
re-send that fails again commits nothing (``draft_resend_failed``); once
``OTP_BOT_DRAFT_DEADLINE`` has passed since the draft began retrying, it
fails with the last error. After a restart a ``retrying`` draft is re-sent
at once.

It also tracks whether the API answers at all: ``api_unreachable`` when it
stops, ``api_reachable`` when it answers again; ``outage`` is what health
reports meanwhile. The backoff arithmetic is pure, in ``otp_bot.solve.hold``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from otp_bot.config import Settings
from otp_bot.errors import OtpBotError
from otp_bot.solve.drafts import Draft, Fail, Stall, State
from otp_bot.solve.hold import Outage, backoff
from otp_bot.solve.ledger import Ledger
from otp_bot.solve.respond import Outcome, Reaction, react

log = structlog.get_logger(__name__)


class Outages:
    """When a stalled call is sent again, and whether the API answers (``outage``)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._clock = clock
        self._log = log.bind(account_id=settings.account_id)
        self.outage: Outage | None = None  # the API failing (health says so)

    def wait_before(self, draft: Draft) -> float | None:
        """Seconds until the draft's call may be re-sent (None: send it now).

        Only a ``retrying`` draft waits; past the deadline it is failed
        (committed) and 0 returned.
        """
        if draft.state is not State.RETRYING:
            return None
        return self._until_resend(draft, self._clock())

    def resend_failed(self, draft: Draft, outcome: Outcome) -> bool:
        """Whether this answer is a re-send failing again: back off, commit nothing."""
        if draft.state is not State.RETRYING or not isinstance(outcome, OtpBotError):
            return False
        limit = self._settings.republish_limit
        reaction = react(draft, outcome, republish_limit=limit, new_key="-")
        if not isinstance(reaction.event, Stall):
            return False
        self._failed_again(draft, reaction.event.error)
        return True

    def answered(self, reaction: Reaction, outcome: Outcome) -> None:
        """A committed answer: the API answered unless the reaction says it did not."""
        self.api_answered(not reaction.unreachable, str(outcome))

    def api_answered(self, answered: bool, error: str) -> None:
        """Track whether the API answers (health reports an outage)."""
        now = self._clock()
        if answered:
            if self.outage is not None:
                down = (now - self.outage.since).total_seconds()
                self._log.info("api_reachable", down_for=round(down), last_error=self.outage.error)
            self.outage = None
            return
        if self.outage is None:
            low, high = self._settings.outage_retry_min, self._settings.outage_retry_max
            first = now + backoff(1, low, high)
            self.outage = Outage(error[:200], since=now, next_try=first)
            self._log.error("api_unreachable", error=error[:300], retry_at=first.isoformat())

    def _failed_again(self, draft: Draft, error: str) -> None:
        now = self._clock()
        outage = self.outage or Outage(error, since=draft.updated_at, next_try=now)
        self.outage = outage
        outage.failed(error, now, self._settings.outage_retry_min, self._settings.outage_retry_max)
        self._log.warning(
            "draft_resend_failed",
            draft_id=draft.draft_id,
            error=error,
            failures=outage.failures,
            retry_in=round((outage.next_try - now).total_seconds(), 1),
        )

    def _until_resend(self, draft: Draft, now: datetime) -> float | None:
        """Seconds until the retrying draft's call is re-sent (None: now); fails it at the
        deadline."""
        deadline = draft.updated_at + timedelta(seconds=self._settings.draft_deadline)
        if now >= deadline:
            detail = (
                f"the API kept failing ({draft.error}) for OTP_BOT_DRAFT_DEADLINE="
                f"{self._settings.draft_deadline:g} s; gave up"
            )
            self._ledger.commit(draft, Fail(draft.error or "api_unreachable", detail))
            return 0
        if self.outage is None:  # after a restart: re-send at once
            error = draft.error or "api_unreachable"
            self.outage = Outage(error, since=draft.updated_at, next_try=now)
        if now < self.outage.next_try:
            return (min(self.outage.next_try, deadline) - now).total_seconds()
        return None
