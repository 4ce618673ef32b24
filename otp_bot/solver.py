"""The per-account worker: drives the account's drafts through their life cycle.

One ``AccountWorker`` per account. Its ``run`` task alone moves drafts that
are under way; ``add_draft`` only inserts (or registers a checkpoint while the
account's slot is free) and ``on_mail`` only stores evidence, and both wake
the task. One step at a time, each one committed before it acts:

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
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from otp_bot.config import Settings
from otp_bot.drafts import (
    ACTIVE,
    Draft,
    Event,
    Fail,
    GotCheckpoint,
    StartPublish,
    State,
    Submit,
    advance,
    event_name,
    new_draft,
    republish_or_fail,
)
from otp_bot.errors import InputRejected, OtpBotError
from otp_bot.logs import mask_code, mask_link
from otp_bot.match import LINK, Candidate, candidates, deadline, first_unused, window_start
from otp_bot.postpress import PostpressClient, PublishOptions
from otp_bot.respond import Outcome, react
from otp_bot.solver_mail import MailIntake
from otp_bot.store import Store

if TYPE_CHECKING:
    from otp_bot.mailbox import IncomingMail, MailboxWatcher

log = structlog.get_logger(__name__)

CHECKPOINT_TYPES = ("OTP", "EMAIL_VERIFICATION")
# Draft ids are short identifiers (the client refuses longer ones too).
MAX_DRAFT_ID = 200
# After an unexpected failure of a step (the database unwritable, a bug) the
# worker tries again after this long, doubling up to the maximum.
STEP_RETRY_S = 1.0
STEP_RETRY_MAX_S = 60.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_key() -> str:
    """A fresh Idempotency-Key for one logical publish or submit attempt."""
    return uuid.uuid4().hex


class AccountWorker:
    """Publishes one account's drafts and solves their checkpoints from its mail."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: PostpressClient,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.clock = clock
        self.account_id = settings.account_id
        self.account_error: str | None = None
        self.mailbox: MailboxWatcher | None = None
        self.on_change: Callable[[Draft], None] | None = None
        self._wake = asyncio.Event()
        self._intake = MailIntake(settings, store, clock, self._wake)
        self._log = log.bind(account_id=self.account_id)
        self._skew = timedelta(seconds=settings.clock_skew)
        self._timeout = timedelta(seconds=settings.code_timeout)

    # --- what the shell calls ------------------------------------------------

    def drafts(self) -> list[Draft]:
        return self.store.load_drafts(self.account_id)

    def draft(self, draft_id: str) -> Draft | None:
        found = self.store.load_drafts(self.account_id, draft_id)
        return found[0] if found else None

    async def add_draft(
        self,
        draft_id: str,
        options: Mapping[str, Any] | None = None,
        checkpoint: str | None = None,
    ) -> Draft:
        """Queue a draft (idempotent); raises ``InputRejected`` for unusable input."""
        _check_new(draft_id, options, checkpoint)
        existing = self.draft(draft_id)
        if existing is not None:
            return existing
        fresh = new_draft(self.account_id, draft_id, self.clock(), options, checkpoint)
        draft = self.store.insert_draft(fresh)
        self._log.info("draft_added", draft_id=draft_id, checkpoint=checkpoint)
        if draft != fresh:
            return draft  # added meanwhile by another caller
        if self.account_error is not None:
            draft = self._commit(draft, Fail(self.account_error, "the account is parked"))
        elif checkpoint is not None and not self._under_way():
            draft = self._commit(draft, GotCheckpoint(checkpoint, issued_at=draft.since))
        self._wake.set()
        return draft

    async def on_mail(self, mail: IncomingMail) -> None:
        """The mailbox watcher's handler: keep what a trusted e-mail offers. Never raises."""
        await self._intake.take(mail)

    async def run(self, stop: asyncio.Event) -> None:
        """Drive the account's drafts until ``stop`` is set."""
        self._resume_report()
        stopping = asyncio.create_task(stop.wait())
        try:
            await self._loop(stop, stopping)
        finally:
            stopping.cancel()
            self._log.info("worker_stopped")

    # --- the loop ------------------------------------------------------------

    async def _loop(self, stop: asyncio.Event, stopping: asyncio.Task[Any]) -> None:
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            step = asyncio.create_task(self._step())
            try:
                await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not step.done():
                    step.cancel()  # only an API call can be pending: safe to re-send
                    with contextlib.suppress(asyncio.CancelledError):
                        await step
            if stop.is_set():
                return
            try:
                idle = step.result()
                failures = 0
            except Exception:  # noqa: BLE001 - one bad step must not end the account's worker
                failures += 1
                idle = min(STEP_RETRY_S * 2 ** (failures - 1), STEP_RETRY_MAX_S)
                self._log.exception("worker_step_failed", retry_in=idle)
            if idle > 0:
                await self._idle(idle, stopping)

    async def _idle(self, seconds: float, stopping: asyncio.Task[Any]) -> None:
        waking = asyncio.create_task(self._wake.wait())
        try:
            timeout = None if math.isinf(seconds) else seconds
            await asyncio.wait({waking, stopping}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            waking.cancel()

    async def _step(self) -> float:
        """Take one step; return how long to idle before the next (0: at once)."""
        if self.account_error is not None:
            return math.inf
        pending = [d for d in self.drafts() if not d.terminal]
        current = next((d for d in pending if d.state in ACTIVE), None)
        if current is None:
            queued = next((d for d in pending if d.state is State.QUEUED), None)
            if queued is None:
                return math.inf
            if queued.checkpoint is not None:  # registered while the slot was taken
                self._commit(queued, GotCheckpoint(queued.checkpoint, issued_at=queued.since))
            else:
                self._commit(queued, StartPublish(new_key()))
            return 0
        if current.state is State.PUBLISHING:
            await self._publish(current)
            return 0
        if current.state is State.SUBMITTING:
            await self._submit(current)
            return 0
        return self._await_code(current)

    async def _publish(self, draft: Draft) -> None:
        options = {**PublishOptions.from_settings(self.settings).to_body(), **draft.options}
        outcome: Outcome
        try:
            outcome = await self.client.publish(
                draft.draft_id, options, idempotency_key=draft.idempotency_key
            )
        except OtpBotError as exc:
            outcome = exc
        self._react(draft, outcome)

    async def _submit(self, draft: Draft) -> None:
        value = self.store.input_value(self.account_id, draft.input_hash or "")
        if value is None:  # cannot happen: the input is stored with the transition
            self._commit(draft, Fail("input_lost", "the input in flight is not in the store"))
            return
        outcome: Outcome
        try:
            outcome = await self.client.solve_checkpoint(
                draft.draft_id, value, idempotency_key=draft.idempotency_key
            )
        except OtpBotError as exc:
            outcome = exc
        if self._react(draft, outcome):
            await self._after_use(draft)

    def _react(self, draft: Draft, outcome: Outcome) -> bool:
        """Commit what the API's answer means; True when the submitted input passed."""
        reaction = react(
            draft, outcome, republish_limit=self.settings.republish_limit, new_key=new_key()
        )
        if reaction.unknown:
            self._log.warning("api_error_unknown_type", draft_id=draft.draft_id, error=str(outcome))
        self._commit(draft, reaction.event, accepted=reaction.accepted)
        if reaction.park is not None:
            self._park(reaction.park, str(outcome))
        return reaction.accepted

    def _await_code(self, draft: Draft) -> float:
        now = self.clock()
        since = draft.since or draft.updated_at
        chosen = self._next_input(draft.checkpoint or "", since)
        if chosen is not None:
            shown = mask_link(chosen.value) if chosen.form == LINK else mask_code(chosen.value)
            event = Submit(new_key(), chosen.hash, chosen.form, shown)
            self._commit(draft, event, use=chosen)
            return 0
        due = deadline(since, self._timeout)
        if now < due:
            return (due - now).total_seconds()
        limit = self.settings.republish_limit
        self._commit(
            draft, republish_or_fail(draft, reason="code_timeout", limit=limit, key=new_key())
        )
        return 0

    def _next_input(self, checkpoint: str, since: datetime) -> Candidate | None:
        evidence = self.store.fresh_evidence(self.account_id, window_start(since, self._skew))
        found = candidates(
            evidence,
            checkpoint=checkpoint,
            since=since,
            skew=self._skew,
            order=[form.value for form in self.settings.verification_input_order],
            remembered=self.store.verification_form(self.account_id),
        )
        used = self.store.used_inputs(self.account_id, (c.hash for c in found))
        return first_unused(found, used)

    # --- side effects of transitions -------------------------------------------

    def _commit(
        self, draft: Draft, event: Event, *, use: Candidate | None = None, accepted: bool = False
    ) -> Draft:
        """Advance the draft and commit the move (with its history line) before anything else."""
        moved = advance(draft, event, self.clock())
        self.store.save_transition(draft, moved, event, use=use, accepted=accepted)
        emit = self._log.warning if moved.state is State.FAILED else self._log.info
        emit(
            "draft_transition",
            draft_id=moved.draft_id,
            transition=event_name(event),
            from_state=draft.state.value,
            to_state=moved.state.value,
            checkpoint=moved.checkpoint,
            job_id=moved.job_id,
            job_state=moved.job_state,
            error=moved.error,
            detail=event.describe(),
        )
        if self.on_change is not None:
            try:
                self.on_change(moved)
            except Exception:  # noqa: BLE001 - a metrics hook must not stop the worker
                self._log.exception("on_change_failed", draft_id=moved.draft_id)
        return moved

    def _park(self, error: str, detail: str) -> None:
        """An account error: fail every waiting draft and refuse new ones until restart."""
        self.account_error = error
        self._log.error(
            "account_parked",
            error=error,
            detail=detail,
            action="fix the postpress account (credentials, restriction), then restart otp-bot",
        )
        for draft in self.drafts():
            if not draft.terminal:
                self._commit(draft, Fail(error, f"the account is parked: {detail}"))

    async def _after_use(self, draft: Draft) -> None:
        mail = self._intake.used(draft.input_hash or "")
        if self.mailbox is None or mail is None:
            return
        try:
            await self.mailbox.after_use(mail)
        except Exception:  # noqa: BLE001 - leaving a used e-mail in place is harmless
            self._log.warning("mail_after_use_failed", uid=mail.uid, exc_info=True)

    def _under_way(self) -> bool:
        return any(d.state in ACTIVE for d in self.drafts())

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


def _check_new(draft_id: str, options: Mapping[str, Any] | None, checkpoint: str | None) -> None:
    if not isinstance(draft_id, str) or not draft_id.strip() or draft_id != draft_id.strip():
        raise InputRejected("draft_id must be a non-empty string without surrounding spaces")
    if len(draft_id) > MAX_DRAFT_ID or not draft_id.isprintable():
        raise InputRejected(f"draft_id must be at most {MAX_DRAFT_ID} printable characters")
    if checkpoint is not None and checkpoint not in CHECKPOINT_TYPES:
        raise InputRejected("checkpoint must be OTP or EMAIL_VERIFICATION")
    try:
        PublishOptions(**dict(options or {}))
    except TypeError:
        raise InputRejected(f"unknown publish options in {sorted(options or {})}") from None
