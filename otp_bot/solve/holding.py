"""Held accounts, API outages and cancels: the steps around ``DraftSteps``' core.

- An account-level error moves the draft to ``held`` and holds the account
  (``AccountHold``, ``solve/hold.py``): no draft starts while it lasts (new
  ones stay ``queued``); the account is probed with ``GET /accounts/{id}``
  with backoff, or at once on ``probe()`` (``otp-bot resume``). A usable
  answer resumes the held draft (a fresh publish) and the queue. When the
  read is not offered, the oldest held draft is published again as the probe.
  After a restart a ``held`` draft holds the account again and it is probed
  at once.
- An outage moves the draft in the middle of a call to ``retrying``; the same
  call is re-sent (same key, same input) with backoff; a failed re-send
  commits nothing; once ``OTP_BOT_DRAFT_DEADLINE`` passed since it began, the
  draft fails with the last error.
- ``cancel()`` stops a queued, awaiting, held or retrying draft at once; a
  draft whose call is in flight is cancelled right after that call's answer
  is committed (``apply_cancels``, after every step).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from otp_bot.errors import OtpBotError
from otp_bot.postpress.wire import AccountStatus
from otp_bot.solve.drafts import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    Cancel,
    Draft,
    Fail,
    Resume,
    Stall,
    State,
)
from otp_bot.solve.hold import AccountHold, Outage, Verdict, backoff, verdict
from otp_bot.solve.respond import Outcome, Reaction, react
from otp_bot.solve.steps import DraftSteps, new_key


class HoldingSteps(DraftSteps):
    """``DraftSteps`` with held accounts, outages and cancels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold: AccountHold | None = None
        self.outage: Outage | None = None  # the API failing (health says so)
        self._cancels: set[str] = set()  # drafts to cancel once their call ends

    @property
    def account_error(self) -> str | None:
        """The account-level error the account is held for (None: not held)."""
        return self.hold.error if self.hold is not None else None

    async def step(self) -> float:
        self.apply_cancels()
        current = next((d for d in self.drafts(pending=True) if d.state in ACTIVE), None)
        if current is not None and current.state is State.HELD and self.hold is None:
            self._hold(current.error or "account_error", current.error_detail or "", restored=True)
        if self.hold is None:
            return await super().step()
        if current is not None and current.draft_id == self.hold.probing:
            return await self._call(current)  # the probe by publishing, or its re-send
        wait = (self.hold.next_probe - self.clock()).total_seconds()
        if wait > 0:
            return wait
        await self.probe()
        return 0

    # --- held accounts ---------------------------------------------------------

    async def probe(self) -> Verdict | None:
        """Probe the held account now (None when it is not held)."""
        hold = self.hold
        if hold is None:
            return None
        outcome: AccountStatus | OtpBotError
        try:
            outcome = await self.client.account()
        except OtpBotError as exc:
            outcome = exc
        found = verdict(outcome)
        if self.hold is not hold:  # resumed meanwhile (by another probe)
            return found
        self._log.info(
            "account_probe", verdict=found.value, error=hold.error, detail=str(outcome)[:300]
        )
        self._api_answered(found is not Verdict.UNREACHABLE, str(outcome))
        if found is Verdict.USABLE:
            self._lift("probe")
        elif found is Verdict.NO_READ:
            self._probe_by_publishing(hold)
        else:
            hold.probed(self.clock(), self.settings.hold_probe_min, self.settings.hold_probe_max)
        return found

    def _hold(self, error: str, detail: str, *, restored: bool = False) -> None:
        now = self.clock()
        low, high = self.settings.hold_probe_min, self.settings.hold_probe_max
        if self.hold is not None:  # the probe by publishing met the error again
            self.hold.probing, self.hold.error = None, error
            self.hold.probed(now, low, high)
            self._log.info("account_probe", verdict=Verdict.HELD.value, error=error, detail=detail)
            return
        first = now if restored else now + backoff(1, low, high)
        self.hold = AccountHold(error, detail, since=now, next_probe=first)
        self._log.error(
            "account_held",
            error=error,
            detail=detail,
            restored=restored,
            next_probe_in=round((first - now).total_seconds(), 1),
            action="fix the postpress account (credentials, restriction); "
            "the queue resumes by itself, or at once with `otp-bot resume`",
        )

    def _lift(self, via: str) -> None:
        hold, self.hold = self.hold, None
        if hold is None:
            return
        held_for = (self.clock() - hold.since).total_seconds()
        self._log.warning("account_resumed", error=hold.error, via=via, held_for=round(held_for))
        waiting = next((d for d in self.drafts(pending=True) if d.state is State.HELD), None)
        if waiting is not None:
            self._commit(waiting, Resume(new_key(), via=via))
        self.wake.set()

    def _probing(self, draft: Draft) -> bool:
        return self.hold is not None and self.hold.probing == draft.draft_id

    def _probe_by_publishing(self, hold: AccountHold) -> None:
        """The account read is not offered: publish the oldest held draft as the probe."""
        waiting = next((d for d in self.drafts(pending=True) if d.state is State.HELD), None)
        if waiting is None:  # nothing held any more: the next publish is the probe
            self._lift("publish")
            return
        self._commit(waiting, Resume(new_key(), via="publish"))
        hold.probing = waiting.draft_id

    # --- reactions: holds, outages ---------------------------------------------

    async def _call(self, draft: Draft) -> float:
        if draft.state is State.RETRYING:
            wait = self._until_resend(draft, self.clock())
            if wait is not None:
                return wait
        return await super()._call(draft)

    def _react(self, draft: Draft, outcome: Outcome) -> Reaction:
        if draft.state is State.RETRYING and isinstance(outcome, OtpBotError):
            still = self._still_down(draft, outcome)
            if still is not None:
                return still
        reaction = super()._react(draft, outcome)
        self._api_answered(not reaction.unreachable, str(outcome))
        if reaction.hold is not None:
            self._hold(reaction.hold, str(outcome))
        elif self._probing(draft) and not reaction.unreachable:
            self._lift("publish")  # the probe by publishing was answered: the account works
        return reaction

    def _still_down(self, draft: Draft, error: OtpBotError) -> Reaction | None:
        """A re-send that failed again: back off, commit nothing (else None: react)."""
        reaction = react(draft, error, republish_limit=self.settings.republish_limit, new_key="-")
        if not isinstance(reaction.event, Stall):
            return None
        now = self.clock()
        outage = self.outage or Outage(reaction.event.error, since=draft.updated_at, next_try=now)
        self.outage = outage
        low, high = self.settings.outage_retry_min, self.settings.outage_retry_max
        outage.failed(reaction.event.error, now, low, high)
        self._log.warning(
            "draft_resend_failed",
            draft_id=draft.draft_id,
            error=reaction.event.error,
            failures=outage.failures,
            retry_in=round((outage.next_try - now).total_seconds(), 1),
        )
        return reaction

    def _api_answered(self, answered: bool, error: str) -> None:
        """Track whether the API answers (health reports an outage)."""
        now = self.clock()
        if answered:
            if self.outage is not None:
                down = (now - self.outage.since).total_seconds()
                self._log.info("api_reachable", down_for=round(down), last_error=self.outage.error)
            self.outage = None
            return
        if self.outage is None:
            first = now + backoff(1, self.settings.outage_retry_min, self.settings.outage_retry_max)
            self.outage = Outage(error[:200], since=now, next_try=first)
            self._log.error("api_unreachable", error=error[:300], retry_at=first.isoformat())

    def _until_resend(self, draft: Draft, now: datetime) -> float | None:
        """Seconds until the retrying draft's call is re-sent (None: now); fails it at the
        deadline."""
        deadline = draft.updated_at + timedelta(seconds=self.settings.draft_deadline)
        if now >= deadline:
            detail = (
                f"the API kept failing ({draft.error}) for OTP_BOT_DRAFT_DEADLINE="
                f"{self.settings.draft_deadline:g} s; gave up"
            )
            self._commit(draft, Fail(draft.error or "api_unreachable", detail))
            return 0
        if self.outage is None:  # after a restart: re-send at once
            error = draft.error or "api_unreachable"
            self.outage = Outage(error, since=draft.updated_at, next_try=now)
        if now < self.outage.next_try:
            return (min(self.outage.next_try, deadline) - now).total_seconds()
        return None

    # --- cancels ---------------------------------------------------------------

    def cancel(self, draft_id: str) -> Draft | None:
        """Cancel a draft now, or right after its call in flight (None: no such draft)."""
        draft = self.draft(draft_id)
        if draft is None or draft.state in TERMINAL:
            return draft
        if self._cancellable(draft):
            moved = self._commit(draft, Cancel())
            self.wake.set()
            return moved
        self._cancels.add(draft_id)
        self._log.info("draft_cancel_pending", draft_id=draft_id, state=draft.state.value)
        self.wake.set()
        return draft

    def cancel_pending(self, draft_id: str) -> bool:
        return draft_id in self._cancels

    def apply_cancels(self) -> None:
        """Cancel the drafts whose cancel waited for their call to end."""
        for draft_id in sorted(self._cancels):
            draft = self.draft(draft_id)
            if draft is None or draft.state in TERMINAL:
                self._cancels.discard(draft_id)
            elif self._cancellable(draft):
                self._commit(draft, Cancel())
                self._cancels.discard(draft_id)

    def _cancellable(self, draft: Draft) -> bool:
        return (draft.state, Cancel) in TRANSITIONS and self.in_call != draft.draft_id
