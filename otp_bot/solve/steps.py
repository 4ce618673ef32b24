"""How an account's drafts advance, one committed step at a time (the worker's engine).

``DraftSteps.step`` takes the next step for the account and says how long to
idle before the one after; ``AccountWorker`` (``otp_bot.solve.worker``) runs it
in a loop and adds the shell's interface. Each step commits its transition
before it acts on it; see ``otp_bot.solve.worker`` for the sequence and the
crash guarantees.

(Over 250 lines: the moves share the commit/report machinery, and reading
them in one place, in the order a draft meets them, is the point.)
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from otp_bot.config import Settings
from otp_bot.errors import ApiError, ExpiredLink, InvalidSolution, OtpBotError
from otp_bot.imap.reading import IncomingMail
from otp_bot.logs import mask_code, mask_link
from otp_bot.postpress.client import PostpressClient, publish_defaults
from otp_bot.postpress.wire import Checkpoint, Published
from otp_bot.solve.drafts import (
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
    republish_or_fail,
)
from otp_bot.solve.intake import MailIntake
from otp_bot.solve.match import Candidate, candidates, deadline, first_unused, window_start
from otp_bot.solve.reader import MailReader
from otp_bot.solve.respond import Outcome, Reaction, react
from otp_bot.store.db import Store
from otp_bot.store.drafts import DraftStore
from otp_bot.store.evidence import EvidenceStore
from otp_bot.vocabulary import CheckpointType, InputForm

log = structlog.get_logger(__name__)

# An input's value is refused again for this long after it was sent; a 6-digit
# code recurring months later is a new code, not a replay.
USED_INPUT_MEMORY = timedelta(days=30)
# Mail received this much before the newest e-mail the account already used
# still counts: the receiving provider's MX hosts may date mail a little apart.
USED_MAIL_SLACK = timedelta(seconds=5)
# Codes and links of e-mails older than this are dropped from the store: no
# checkpoint can use them any more (LinkedIn's codes live about 15 minutes).
EVIDENCE_RETENTION = timedelta(days=1)


# Marks, moves or deletes the e-mail whose input passed (``MailboxWatcher.after_use``).
AfterUse = Callable[[IncomingMail], Awaitable[Any]]


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WorkerHooks:
    """What the worker reports as it goes (metrics). A hook that raises is logged, not fatal."""

    # A draft was added or moved.
    changed: Callable[[Draft], None] = _ignore
    # An API call ended in an error envelope: its ``errors/...`` type.
    api_error: Callable[[str], None] = _ignore
    # A submitted input's answer: published, checkpoint, invalid, expired or error.
    submitted: Callable[[str], None] = _ignore
    # The input's form (code, link, pin) and the seconds from its e-mail being
    # seen to the input being sent.
    latency: Callable[[str, float], None] = _ignore


NO_HOOKS = WorkerHooks()


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_key() -> str:
    """A fresh Idempotency-Key for one logical publish or submit attempt."""
    return uuid.uuid4().hex


class DraftSteps:
    """The account's state and its steps, built with everything they need.

    ``after_use`` acts on the e-mail whose input passed; ``hooks`` hear what
    happens (metrics); ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: PostpressClient,
        *,
        after_use: AfterUse | None = None,
        hooks: WorkerHooks = NO_HOOKS,
        clock: Callable[[], datetime] = utcnow,
        reader: MailReader | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.clock = clock
        self.account_id = settings.account_id
        self.in_call: str | None = None  # the draft whose API call is in flight
        self._after_use_action = after_use
        self._hooks = hooks
        self.wake = asyncio.Event()  # set when there may be something to do
        self.records = DraftStore(store)
        self.evidence = EvidenceStore(store)
        self._intake = MailIntake(settings, self.evidence, clock, self.wake, reader)
        self._chores: set[asyncio.Task[None]] = set()  # after_use calls in flight
        self._log = log.bind(account_id=self.account_id)
        self._skew = timedelta(seconds=settings.clock_skew)
        self._timeout = timedelta(seconds=settings.code_timeout)

    def drafts(self, *, pending: bool = False) -> list[Draft]:
        """The account's drafts in queue order (``pending``: not yet terminal)."""
        return self.records.load_drafts(self.account_id, pending=pending)

    def draft(self, draft_id: str) -> Draft | None:
        found = self.records.load_drafts(self.account_id, draft_id)
        return found[0] if found else None

    async def step(self) -> float:
        """Take one step; return how long to idle before the next (0: at once)."""
        pending = self.drafts(pending=True)
        current = next((d for d in pending if d.state in ACTIVE), None)
        if current is None:
            return self._start_next(pending)
        if current.state is State.AWAITING_CODE:
            return self._await_code(current)
        return await self._call(current)

    def _start_next(self, pending: list[Draft]) -> float:
        """No draft under way: the oldest queued one takes the account's slot."""
        queued = next((d for d in pending if d.state is State.QUEUED), None)
        if queued is None:
            return math.inf
        if queued.checkpoint is not None:  # registered while the slot was taken
            self._commit(queued, GotCheckpoint(queued.checkpoint, issued_at=queued.since))
        else:
            self.evidence.forget_evidence(self.account_id, self.clock() - EVIDENCE_RETENTION)
            self._commit(queued, StartPublish(new_key()))
        return 0

    async def _call(self, draft: Draft) -> float:
        """Send the draft's call (publish, or submit its input) under its key; commit the answer."""
        outcome = await self._send(draft)
        if outcome is not None:
            self._react(draft, outcome)
        return 0

    async def _send(self, draft: Draft) -> Outcome | None:
        """The API's answer to the draft's call (None: the input was lost, the draft failed)."""
        value = None
        if draft.input_hash is not None:
            value = self.evidence.input_value(self.account_id, draft.input_hash)
            if value is None:  # cannot happen: the input is stored with the transition
                self._commit(draft, Fail("input_lost", "the input in flight is not in the store"))
                return None
        self.in_call, draft_id, key = draft.draft_id, draft.draft_id, draft.idempotency_key
        try:
            # The key (and the input, recorded as used) are on disk before the call.
            await self.store.durable()
            if value is not None:
                return await self.client.solve_checkpoint(draft_id, value, idempotency_key=key)
            options = {**publish_defaults(self.settings).to_body(), **draft.options}
            return await self.client.publish(draft_id, options, idempotency_key=key)
        except OtpBotError as exc:
            return exc
        finally:
            self.in_call = None

    def _react(self, draft: Draft, outcome: Outcome) -> Reaction:
        """Commit what the API's answer means (its reaction is returned)."""
        if isinstance(outcome, ApiError):
            self._report(self._hooks.api_error, outcome.type)
        if draft.input_hash is not None:  # the answer to a submitted input
            self._report(self._hooks.submitted, submission_result(outcome))
        reaction = react(
            draft, outcome, republish_limit=self.settings.republish_limit, new_key=new_key()
        )
        if reaction.unknown:
            self._log.warning("api_error_unknown_type", draft_id=draft.draft_id, error=str(outcome))
        self._commit(draft, reaction.event, accepted=reaction.accepted, spent=reaction.spent)
        if reaction.accepted:
            self._after_use(draft)
        return reaction

    def _await_code(self, draft: Draft) -> float:
        now = self.clock()
        since = draft.since or draft.updated_at
        chosen = self._next_input(draft.checkpoint, since)
        if chosen is not None:
            link = chosen.form is InputForm.LINK
            shown = mask_link(chosen.value) if link else mask_code(chosen.value)
            event = Submit(new_key(), chosen.hash, chosen.form, shown)
            self._commit(draft, event, use=chosen)
            seen = self.evidence.stored_at(self.account_id, chosen.evidence_id)
            if seen is not None:  # e-mail -> submit, for this very input
                seconds = max(0.0, (now - seen).total_seconds())
                self._report(self._hooks.latency, chosen.form.value, seconds)
            return 0
        due = deadline(since, self._timeout)
        if now < due:
            return (due - now).total_seconds()
        limit = self.settings.republish_limit
        self._commit(
            draft, republish_or_fail(draft, reason="code_timeout", limit=limit, key=new_key())
        )
        return 0

    def _next_input(self, checkpoint: CheckpointType | None, since: datetime) -> Candidate | None:
        newest_used = self.evidence.newest_consumed(self.account_id)
        if newest_used is not None:
            newest_used -= USED_MAIL_SLACK
        start = window_start(since, self._skew, newest_used)
        found = candidates(
            self.evidence.fresh_evidence(self.account_id, start),
            checkpoint=checkpoint,
            since=since,
            skew=self._skew,
            order=self.settings.verification_input_order,
            remembered=self.evidence.verification_form(self.account_id),
            newest_used=newest_used,
        )
        hashes = (c.hash for c in found)
        used = self.evidence.used_inputs(self.account_id, hashes, self.clock() - USED_INPUT_MEMORY)
        return first_unused(found, used)

    # --- side effects of transitions -------------------------------------------

    def _commit(
        self,
        draft: Draft,
        event: Event,
        *,
        use: Candidate | None = None,
        accepted: bool = False,
        spent: bool = False,
    ) -> Draft:
        """Advance the draft and commit the move (with its history line) before anything else."""
        moved = advance(draft, event, self.clock())
        self.records.save_transition(draft, moved, event, use=use, accepted=accepted, spent=spent)
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
        self._changed(moved)
        return moved

    def _changed(self, draft: Draft) -> None:
        self._report(self._hooks.changed, draft)

    def _report(self, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception:  # noqa: BLE001 - a metrics hook must not stop the worker
            name = getattr(hook, "__name__", type(hook).__name__)
            about = {"draft_id": args[0].draft_id} if args and isinstance(args[0], Draft) else {}
            self._log.exception("on_change_failed", hook=name, **about)

    def _after_use(self, draft: Draft) -> None:
        """Let the mailbox mark, move or delete the used e-mail, without holding up the worker."""
        mail = self._intake.used(draft.input_hash or "")
        if self._after_use_action is None or mail is None:
            return
        task = asyncio.create_task(self._apply_after_use(self._after_use_action, mail))
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _apply_after_use(self, action: AfterUse, mail: IncomingMail) -> None:
        try:
            await action(mail)
        except Exception:  # noqa: BLE001 - leaving a used e-mail in place is harmless
            self._log.warning("mail_after_use_failed", uid=mail.uid, exc_info=True)

    def _under_way(self) -> bool:
        return any(d.state in ACTIVE for d in self.drafts(pending=True))


def submission_result(outcome: Outcome) -> str:
    """The ``result`` label of a submission: what the API made of the input."""
    if isinstance(outcome, Published):
        return "published"
    if isinstance(outcome, Checkpoint):
        return "checkpoint"
    if isinstance(outcome, InvalidSolution):
        return "invalid"
    if isinstance(outcome, ExpiredLink):
        return "expired"
    return "error"
