"""How an account's drafts advance, one committed step at a time: ``DraftSteps``.

``step()`` takes the next step for the account and returns how long to idle
before the one after (0: at once; the worker runs it in a loop):

- no draft under way: the oldest queued one takes the account's slot
  (``publishing`` under a fresh idempotency key, committed, then published;
  one whose checkpoint was registered while it waited goes straight to
  ``awaiting_code``);
- ``publishing`` / ``submitting`` / ``retrying``: send the call under the
  stored key (after a restart this re-sends the same publish or the same
  input; postpress replays the original answer), then commit what the
  answer means (``otp_bot.solve.respond``);
- ``awaiting_code``: the best unused input from stored evidence
  (``otp_bot.solve.match``) is recorded as used and the draft moved to
  ``submitting`` in one transaction; with none, wait for mail until
  ``since + OTP_BOT_CODE_TIMEOUT``, then publish again (bounded) or fail
  with ``code_timeout``.

Each move is committed (``Ledger.commit``) before anything is sent. Around
each call, ``Outages`` may hold a re-send back or swallow one that failed
again, and ``Holding`` hears every committed answer (an account-level error
holds the account). Metrics are reported through ``WorkerHooks``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from otp_bot.config import Settings
from otp_bot.errors import ApiError, ExpiredLink, InvalidSolution, OtpBotError
from otp_bot.logs import mask_code, mask_link
from otp_bot.postpress.client import PostpressClient, publish_defaults
from otp_bot.postpress.wire import Checkpoint, Published
from otp_bot.solve.after_use import AfterUseTasks
from otp_bot.solve.drafts import (
    ACTIVE,
    Draft,
    Fail,
    GotCheckpoint,
    StartPublish,
    State,
    Submit,
    republish_or_fail,
)
from otp_bot.solve.holding import Holding
from otp_bot.solve.hooks import WorkerHooks, report
from otp_bot.solve.ledger import Ledger, new_key
from otp_bot.solve.match import Candidate, candidates, deadline, first_unused, window_start
from otp_bot.solve.outages import Outages
from otp_bot.solve.respond import Outcome, Reaction, react
from otp_bot.store.db import Store
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


class DraftSteps:
    """The account's steps, built with everything they need (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        client: PostpressClient,
        ledger: Ledger,
        evidence: EvidenceStore,
        outages: Outages,
        holding: Holding,
        after_use: AfterUseTasks,
        hooks: WorkerHooks,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._account_id = settings.account_id
        self._store = store  # made durable before each call
        self._client = client
        self._ledger = ledger
        self._evidence = evidence
        self._outages = outages
        self._holding = holding
        self._after_use = after_use
        self._hooks = hooks
        self._clock = clock
        self._log = log.bind(account_id=settings.account_id)
        self._skew = timedelta(seconds=settings.clock_skew)
        self._timeout = timedelta(seconds=settings.code_timeout)
        self.in_call: str | None = None  # the draft whose API call is in flight

    async def step(self) -> float:
        """Take one step; return how long to idle before the next (0: at once)."""
        pending = self._ledger.drafts(pending=True)
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
            self._ledger.commit(queued, GotCheckpoint(queued.checkpoint, issued_at=queued.since))
        else:
            self._evidence.forget_evidence(self._account_id, self._clock() - EVIDENCE_RETENTION)
            self._ledger.commit(queued, StartPublish(new_key()))
        return 0

    async def _call(self, draft: Draft) -> float:
        """Send the draft's call (publish, or submit its input) under its key; commit the answer.

        A re-send after an outage waits for its turn, and commits nothing when it fails again.
        """
        wait = self._outages.wait_before(draft)
        if wait is not None:
            return wait
        outcome = await self._send(draft)
        if outcome is None or self._outages.resend_failed(draft, outcome):
            return 0
        reaction = self._react(draft, outcome)
        self._outages.answered(reaction, outcome)
        self._holding.answered(draft, reaction, outcome)
        return 0

    async def _send(self, draft: Draft) -> Outcome | None:
        """The API's answer to the draft's call (None: the input was lost, the draft failed)."""
        value = None
        if draft.input_hash is not None:
            value = self._evidence.input_value(self._account_id, draft.input_hash)
            if value is None:  # cannot happen: the input is stored with the transition
                fail = Fail("input_lost", "the input in flight is not in the store")
                self._ledger.commit(draft, fail)
                return None
        self.in_call, draft_id, key = draft.draft_id, draft.draft_id, draft.idempotency_key
        try:
            # The key (and the input, recorded as used) are on disk before the call.
            await self._store.durable()
            if value is not None:
                return await self._client.solve_checkpoint(draft_id, value, idempotency_key=key)
            options = {**publish_defaults(self._settings).to_body(), **draft.options}
            return await self._client.publish(draft_id, options, idempotency_key=key)
        except OtpBotError as exc:
            return exc
        finally:
            self.in_call = None

    def _react(self, draft: Draft, outcome: Outcome) -> Reaction:
        """Commit what the API's answer means (its reaction is returned)."""
        if isinstance(outcome, ApiError):
            report(self._log, self._hooks.api_error, outcome.type)
        if draft.input_hash is not None:  # the answer to a submitted input
            report(self._log, self._hooks.submitted, submission_result(outcome))
        limit = self._settings.republish_limit
        reaction = react(draft, outcome, republish_limit=limit, new_key=new_key())
        if reaction.unknown:
            self._log.warning("api_error_unknown_type", draft_id=draft.draft_id, error=str(outcome))
        self._ledger.commit(draft, reaction.event, accepted=reaction.accepted, spent=reaction.spent)
        if reaction.accepted:
            self._after_use.accepted(draft)
        return reaction

    def _await_code(self, draft: Draft) -> float:
        """Submit the best unused input, or wait for one until the code timeout."""
        now = self._clock()
        since = draft.since or draft.updated_at
        chosen = self._next_input(draft.checkpoint, since)
        if chosen is not None:
            self._submit(draft, chosen, now)
            return 0
        due = deadline(since, self._timeout)
        if now < due:
            return (due - now).total_seconds()
        limit = self._settings.republish_limit
        event = republish_or_fail(draft, reason="code_timeout", limit=limit, key=new_key())
        self._ledger.commit(draft, event)
        return 0

    def _submit(self, draft: Draft, chosen: Candidate, now: datetime) -> None:
        """Record the input as used and move the draft to ``submitting``; report its latency."""
        link = chosen.form is InputForm.LINK
        shown = mask_link(chosen.value) if link else mask_code(chosen.value)
        self._ledger.commit(draft, Submit(new_key(), chosen.hash, chosen.form, shown), use=chosen)
        seen = self._evidence.stored_at(self._account_id, chosen.evidence_id)
        if seen is not None:  # e-mail -> submit, for this very input
            seconds = max(0.0, (now - seen).total_seconds())
            report(self._log, self._hooks.latency, chosen.form.value, seconds)

    def _next_input(self, checkpoint: CheckpointType | None, since: datetime) -> Candidate | None:
        newest_used = self._evidence.newest_consumed(self._account_id)
        if newest_used is not None:
            newest_used -= USED_MAIL_SLACK
        start = window_start(since, self._skew, newest_used)
        found = candidates(
            self._evidence.fresh_evidence(self._account_id, start),
            checkpoint=checkpoint,
            since=since,
            skew=self._skew,
            order=self._settings.verification_input_order,
            remembered=self._evidence.verification_form(self._account_id),
            newest_used=newest_used,
        )
        hashes = (c.hash for c in found)
        forget = self._clock() - USED_INPUT_MEMORY
        used = self._evidence.used_inputs(self._account_id, hashes, forget)
        return first_unused(found, used)


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
