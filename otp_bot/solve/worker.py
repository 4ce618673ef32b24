"""The per-account worker: drives the account's drafts through their life cycle.

One ``AccountWorker`` per account. Its ``run`` task alone moves drafts that
are under way; ``add_draft`` only inserts (or registers a checkpoint while the
account's slot is free, or re-queues a failed draft when asked to retry) and
``on_mail`` only stores evidence, and both wake the task. One step at a time
(``otp_bot.solve.steps``), each committed before it acts:

- no draft under way: the oldest queued one takes the account's slot
  (``publishing`` under a fresh idempotency key, committed, then published);
- ``publishing`` / ``submitting``: send the call under the stored key (after a
  restart this re-sends the same publish or the same input; postpress replays
  the original answer), then commit what the answer means (``respond``);
- ``awaiting_code``: the best unused input from stored evidence (``match``)
  is recorded as used and the draft moved to ``submitting`` in one
  transaction; with none, wait for mail until ``since + code_timeout``, then
  publish again (bounded) or fail with ``code_timeout``.

Store writes are synchronous and short, so no cancellation can split a
transition from its history line; a stop cancels only an API call in flight,
which is safe to re-send under its stored key.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from otp_bot.errors import InputRejected
from otp_bot.postpress.wire import PUBLISH_OPTIONS
from otp_bot.solve.drafts import ACTIVE, Draft, GotCheckpoint, Retry, State, new_draft
from otp_bot.solve.holding import HoldingSteps
from otp_bot.vocabulary import MAX_DRAFT_ID, CheckpointType

if TYPE_CHECKING:
    from otp_bot.imap.watcher import IncomingMail
    from otp_bot.mail.extract import Evidence

# After an unexpected failure of a step (the database unwritable, a bug) the
# worker tries again after this long, doubling up to the maximum.
STEP_RETRY_S = 1.0
STEP_RETRY_MAX_S = 60.0


class AccountWorker(HoldingSteps):
    """Publishes one account's drafts and solves their checkpoints from its mail.

    Constructed with everything it needs: ``AccountWorker(settings, store,
    client, after_use=watcher.after_use, hooks=WorkerHooks(...), clock=...,
    reader=...)`` (the daemon's ``reader`` reads mail in a child process, within a
    budget).
    The shell reads ``hold`` (the account is held) and ``outage`` (the API is
    failing).
    """

    # --- what the shell calls ------------------------------------------------

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
        existing = self.draft(draft_id)
        if existing is not None:
            if retry and existing.state in (State.FAILED, State.CANCELLED):
                return self._retry(existing)
            return existing
        fresh = new_draft(self.account_id, draft_id, self.clock(), options, kind)
        draft = self.records.insert_draft(fresh)
        if draft != fresh:
            return draft  # added meanwhile by another caller
        self._log.info("draft_added", draft_id=draft_id, checkpoint=checkpoint)
        self._changed(draft)
        # While the account is held the draft waits in the queue, checkpoint or not.
        if kind is not None and self.hold is None and not self._under_way():
            draft = self._commit(draft, GotCheckpoint(kind, issued_at=draft.since))
        self.wake.set()
        return draft

    def retry_failed(self, error: str | None = None) -> list[Draft]:
        """Queue again every failed draft (only those failed with ``error``, if given)."""
        failed = self.records.find_drafts(self.account_id, states={State.FAILED.value}, error=error)
        return [self._retry(draft) for draft in failed]

    def find(self, states: set[str] | None = None, since: datetime | None = None) -> list[Draft]:
        """The account's drafts in one of ``states``, changed at or after ``since``."""
        return self.records.find_drafts(self.account_id, states=states, since=since)

    def _retry(self, done: Draft) -> Draft:
        """Re-queue a failed or cancelled draft (a held account keeps it queued)."""
        draft = self._commit(done, Retry(done.error))
        self.wake.set()
        return draft

    async def on_mail(self, mail: IncomingMail) -> Evidence | None:
        """The mailbox watcher's handler: keep what a trusted e-mail offers. Never raises.

        Returns what was read from the e-mail (None if handling failed).
        """
        return await self._intake.take(mail)

    async def run(self, stop: asyncio.Event, abort: asyncio.Event | None = None) -> None:
        """Drive the account's drafts until ``stop`` is set.

        A step under way is cancelled when ``abort`` is set (default: ``stop``;
        only an API call can be pending, safe to re-send under its key); when
        only ``stop`` is, it finishes first (an account removed by a reload).
        """
        self._resume_report()
        stopping = asyncio.create_task(stop.wait())
        aborting = asyncio.create_task(abort.wait()) if abort is not None else stopping
        try:
            await self._loop(stop, stopping, aborting)
        finally:
            stopping.cancel()
            aborting.cancel()
            for chore in self._chores:
                chore.cancel()  # an unfinished after_use leaves the e-mail in place
            self._log.info("worker_stopped")

    # --- the loop ------------------------------------------------------------

    async def _loop(
        self, stop: asyncio.Event, stopping: asyncio.Task[Any], aborting: asyncio.Task[Any]
    ) -> None:
        failures = 0
        while not stop.is_set():
            self.wake.clear()
            step = asyncio.create_task(self.step())
            try:
                await asyncio.wait({step, aborting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not step.done():
                    step.cancel()  # only an API call can be pending: safe to re-send
                    with contextlib.suppress(asyncio.CancelledError):
                        await step
            if stop.is_set() or aborting.done():
                return
            try:
                idle = step.result()
                failures = 0
                self.apply_cancels()  # a cancel that waited for this step's call
            except Exception:  # noqa: BLE001 - one bad step must not end the account's worker
                failures += 1
                idle = min(STEP_RETRY_S * 2 ** (failures - 1), STEP_RETRY_MAX_S)
                self._log.exception("worker_step_failed", retry_in=idle)
            if idle > 0:
                await self._idle(idle, stopping)

    async def _idle(self, seconds: float, stopping: asyncio.Task[Any]) -> None:
        waking = asyncio.create_task(self.wake.wait())
        try:
            timeout = None if math.isinf(seconds) else seconds
            await asyncio.wait(
                {waking, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waking.cancel()

    def _resume_report(self) -> None:
        counts: dict[str, int] = {}
        for draft in self.drafts():
            counts[draft.state.value] = counts.get(draft.state.value, 0) + 1
            if draft.state in ACTIVE:
                self._log.info(
                    "draft_resumed",
                    draft_id=draft.draft_id,
                    state=draft.state.value,
                    checkpoint=draft.checkpoint,
                    since=draft.since.isoformat() if draft.since else None,
                )
        self._log.info("worker_started", drafts=counts)


def _checked(
    draft_id: object, options: Mapping[str, Any] | None, checkpoint: object
) -> CheckpointType | None:
    """The checkpoint type of a well-formed new draft; ``InputRejected`` naming the flaw.

    This is where a draft enters otp-bot (the control API only parses its
    JSON types), so this is the one place its id, options and checkpoint are checked.
    """
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
