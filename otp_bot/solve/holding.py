"""Held accounts: after an account-level error the account's queue waits until it is usable.

An account-level error (``disconnected_account``, ``expired_credentials``,
``account_restricted``, ...) moves the draft to ``held`` and holds the
account (``AccountHold``): no draft starts while it lasts (new ones stay
``queued``). The account is probed with ``GET /accounts/{id}``, first after
``OTP_BOT_HOLD_PROBE_MIN`` seconds, then twice as late each time up to
``OTP_BOT_HOLD_PROBE_MAX``, or at once on ``probe()`` (``otp-bot resume``).
A usable answer resumes the held draft (a fresh publish) and the queue.
When the account read is not offered, the oldest held draft is published
again as the probe, and any answer but an account-level error shows the
account usable. After a restart a ``held`` draft holds the account again
and it is probed at once.

``Holding.step`` runs before the worker's usual step (``None``: take it);
``answered`` hears every API answer the steps commit. What a probe's answer
means, and the backoff, are pure: ``otp_bot.solve.hold``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from otp_bot.config import Settings
from otp_bot.errors import OtpBotError
from otp_bot.postpress.client import PostpressClient
from otp_bot.postpress.wire import AccountStatus
from otp_bot.solve.drafts import Draft, Resume, State
from otp_bot.solve.hold import AccountHold, Verdict, backoff, verdict
from otp_bot.solve.ledger import Ledger, new_key
from otp_bot.solve.outages import Outages
from otp_bot.solve.respond import Outcome, Reaction

# What the operator is told to do when the account is held.
HELD_ACTION = (
    "fix the postpress account (credentials, restriction); "
    "the queue resumes by itself, or at once with `otp-bot resume`"
)

log = structlog.get_logger(__name__)


class Holding:
    """Whether the account is held (``hold``), its probes, and resuming it."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: PostpressClient,
        ledger: Ledger,
        outages: Outages,
        wake: asyncio.Event,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._client = client
        self._ledger = ledger
        self._outages = outages  # told whether each probe reached the API
        self._wake = wake  # set when the queue may move again
        self._clock = clock
        self._log = log.bind(account_id=settings.account_id)
        self.hold: AccountHold | None = None

    @property
    def account_error(self) -> str | None:
        """The account-level error the account is held for (None: not held)."""
        return self.hold.error if self.hold is not None else None

    async def step(self) -> float | None:
        """While held: seconds to idle, after probing when one is due (None: not held, or
        its probe by publishing is under way; take the usual step)."""
        current = self._ledger.current()
        if current is not None and current.state is State.HELD and self.hold is None:
            self._hold(current.error or "account_error", current.error_detail or "", restored=True)
        if self.hold is None or (current is not None and self._probing(current)):
            return None
        wait = (self.hold.next_probe - self._clock()).total_seconds()
        if wait > 0:
            return wait
        await self.probe()
        return 0

    async def probe(self) -> Verdict | None:
        """Probe the held account now (None when it is not held)."""
        hold = self.hold
        if hold is None:
            return None
        outcome: AccountStatus | OtpBotError
        try:
            outcome = await self._client.account()
        except OtpBotError as exc:
            outcome = exc
        found = verdict(outcome)
        if self.hold is not hold:  # resumed meanwhile (by another probe)
            return found
        self._log.info(
            "account_probe", verdict=found.value, error=hold.error, detail=str(outcome)[:300]
        )
        self._outages.api_answered(found is not Verdict.UNREACHABLE, str(outcome))
        self._probed(hold, found)
        return found

    def answered(self, draft: Draft, reaction: Reaction, outcome: Outcome) -> None:
        """A committed answer: hold the account, or lift the hold its probe was for."""
        if reaction.hold is not None:
            self._hold(reaction.hold, str(outcome))
        elif self._probing(draft) and not reaction.unreachable:
            self._lift("publish")  # the probe by publishing was answered: the account works

    def _probed(self, hold: AccountHold, found: Verdict) -> None:
        if found is Verdict.USABLE:
            self._lift("probe")
        elif found is Verdict.NO_READ:
            self._probe_by_publishing(hold)
        else:
            hold.probed(self._clock(), self._settings.hold_probe_min, self._settings.hold_probe_max)

    def _hold(self, error: str, detail: str, *, restored: bool = False) -> None:
        now = self._clock()
        low, high = self._settings.hold_probe_min, self._settings.hold_probe_max
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
            action=HELD_ACTION,
        )

    def _lift(self, via: str) -> None:
        hold, self.hold = self.hold, None
        if hold is None:
            return
        held_for = (self._clock() - hold.since).total_seconds()
        self._log.warning("account_resumed", error=hold.error, via=via, held_for=round(held_for))
        waiting = self._oldest_held()
        if waiting is not None:
            self._ledger.commit(waiting, Resume(new_key(), via=via))
        self._wake.set()

    def _probing(self, draft: Draft) -> bool:
        return self.hold is not None and self.hold.probing == draft.draft_id

    def _probe_by_publishing(self, hold: AccountHold) -> None:
        """The account read is not offered: publish the oldest held draft as the probe."""
        waiting = self._oldest_held()
        if waiting is None:  # nothing held any more: the next publish is the probe
            self._lift("publish")
            return
        self._ledger.commit(waiting, Resume(new_key(), via="publish"))
        hold.probing = waiting.draft_id

    def _oldest_held(self) -> Draft | None:
        return next((d for d in self._ledger.drafts(pending=True) if d.state is State.HELD), None)
