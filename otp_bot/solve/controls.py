"""What the shell asks of an account's drafts: add one (checked), retry, cancel.

``add_draft`` is where a draft enters otp-bot (the control API only parses
its JSON types), so it is the one place its id, options and checkpoint are
checked. It only inserts, or registers a checkpoint while the account's
slot is free, or re-queues a failed draft when asked to retry; moving
drafts that are under way is the worker's loop's alone. Every change wakes
that loop.

``cancel`` stops a queued, awaiting, held or retrying draft at once; a draft
whose call is in flight is cancelled right after that call's answer is
committed (``apply_cancels``, which the worker runs around every step).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from otp_bot.errors import InputRejected
from otp_bot.postpress.wire import PUBLISH_OPTIONS
from otp_bot.solve.drafts import (
    TERMINAL,
    TRANSITIONS,
    Cancel,
    Draft,
    GotCheckpoint,
    Retry,
    State,
    new_draft,
)
from otp_bot.solve.holding import Holding
from otp_bot.solve.ledger import Ledger
from otp_bot.solve.steps import DraftSteps
from otp_bot.vocabulary import MAX_DRAFT_ID, CheckpointType

log = structlog.get_logger(__name__)


class DraftControls:
    """Adds, re-queues and cancels one account's drafts."""

    def __init__(
        self,
        account_id: str,
        *,
        ledger: Ledger,
        holding: Holding,
        steps: DraftSteps,
        wake: asyncio.Event,
        clock: Callable[[], datetime],
    ) -> None:
        self._account_id = account_id
        self._ledger = ledger
        self._holding = holding  # a held account keeps new drafts queued
        self._steps = steps  # says which draft's call is in flight
        self._wake = wake
        self._clock = clock
        self._log = log.bind(account_id=account_id)
        self._cancels: set[str] = set()  # drafts to cancel once their call ends

    async def add_draft(
        self,
        draft_id: str,
        options: Mapping[str, Any] | None = None,
        checkpoint: str | None = None,
        *,
        retry: bool = False,
    ) -> Draft:
        """Queue a draft (idempotent); raises ``InputRejected`` for unusable input.

        ``retry``: an existing draft that failed is queued again for a fresh
        attempt; any other existing draft is returned unchanged.
        """
        kind = _checked(draft_id, options, checkpoint)
        existing = self._ledger.draft(draft_id)
        if existing is not None:
            if retry and existing.state in (State.FAILED, State.CANCELLED):
                return self._retry(existing)
            return existing
        fresh = new_draft(self._account_id, draft_id, self._clock(), options, kind)
        draft = self._ledger.insert(fresh)
        if draft != fresh:
            return draft  # added meanwhile by another caller
        self._log.info("draft_added", draft_id=draft_id, checkpoint=checkpoint)
        self._ledger.changed(draft)
        # While the account is held the draft waits in the queue, checkpoint or not.
        if kind is not None and self._holding.hold is None and self._ledger.current() is None:
            draft = self._ledger.commit(draft, GotCheckpoint(kind, issued_at=draft.since))
        self._wake.set()
        return draft

    def retry_failed(self, error: str | None = None) -> list[Draft]:
        """Queue again every failed draft (only those failed with ``error``, if given)."""
        failed = self._ledger.find(states={State.FAILED.value}, error=error)
        return [self._retry(draft) for draft in failed]

    def _retry(self, done: Draft) -> Draft:
        """Re-queue a failed or cancelled draft (a held account keeps it queued)."""
        draft = self._ledger.commit(done, Retry(done.error))
        self._wake.set()
        return draft

    def cancel(self, draft_id: str) -> Draft | None:
        """Cancel a draft now, or right after its call in flight (None: no such draft)."""
        draft = self._ledger.draft(draft_id)
        if draft is None or draft.state in TERMINAL:
            return draft
        if self._cancellable(draft):
            moved = self._ledger.commit(draft, Cancel())
            self._wake.set()
            return moved
        self._cancels.add(draft_id)
        self._log.info("draft_cancel_pending", draft_id=draft_id, state=draft.state.value)
        self._wake.set()
        return draft

    def cancel_pending(self, draft_id: str) -> bool:
        """Whether the draft is to be cancelled once its call in flight is answered."""
        return draft_id in self._cancels

    def apply_cancels(self) -> None:
        """Cancel the drafts whose cancel waited for their call to end."""
        for draft_id in sorted(self._cancels):
            draft = self._ledger.draft(draft_id)
            if draft is None or draft.state in TERMINAL:
                self._cancels.discard(draft_id)
            elif self._cancellable(draft):
                self._ledger.commit(draft, Cancel())
                self._cancels.discard(draft_id)

    def _cancellable(self, draft: Draft) -> bool:
        return (draft.state, Cancel) in TRANSITIONS and self._steps.in_call != draft.draft_id


def _checked(
    draft_id: object, options: Mapping[str, Any] | None, checkpoint: object
) -> CheckpointType | None:
    """The checkpoint type of a well-formed new draft; ``InputRejected`` naming the flaw."""
    if not isinstance(draft_id, str) or not draft_id.strip() or draft_id != draft_id.strip():
        raise InputRejected("draft_id must be a non-empty string without surrounding spaces")
    if len(draft_id) > MAX_DRAFT_ID or not draft_id.isprintable():
        raise InputRejected(f"draft_id must be at most {MAX_DRAFT_ID} printable characters")
    if checkpoint is not None and checkpoint not in tuple(CheckpointType):
        raise InputRejected(f"checkpoint must be one of {', '.join(CheckpointType)}")
    unknown = set(options or {}) - PUBLISH_OPTIONS
    if unknown:
        raise InputRejected(f"unknown publish options: {', '.join(sorted(map(str, unknown)))}")
    _check_budget((options or {}).get("budget"))
    return CheckpointType(str(checkpoint)) if checkpoint is not None else None


BUDGET_PERIODS = ("daily", "monthly")
BUDGET_FIELDS = frozenset({"currency", "amount"})


def _check_budget(budget: object) -> None:
    """``{"daily" | "monthly": {"currency": str, "amount": positive finite number}}``, no
    other key at either level (docs/contract.md, "Publish")."""
    if budget is None:
        return
    if not isinstance(budget, dict) or len(budget) != 1 or set(budget) - set(BUDGET_PERIODS):
        raise InputRejected('budget must be {"daily": {...}} or {"monthly": {...}}')
    ((period, amount),) = budget.items()
    if not isinstance(amount, dict) or set(amount) != BUDGET_FIELDS:
        raise InputRejected(f'budget.{period} must have exactly "currency" and "amount"')
    currency, value = amount["currency"], amount["amount"]
    if not isinstance(currency, str) or not 1 <= len(currency) <= 8 or not currency.isalpha():
        raise InputRejected(f"budget.{period}.currency must be a currency code such as EUR")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise InputRejected(f"budget.{period}.amount must be a positive finite number")
