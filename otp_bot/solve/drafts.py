"""The draft life cycle: states, events and the one table of legal moves.

Pure: no I/O, no clock (``now`` is passed in), no logging. The solver turns
API answers and e-mails into events, calls ``advance`` and stores the result
before it acts on it.

::

    queued ──StartPublish──► publishing ──GotPublished──► published
      │                        │    ▲
      │ GotCheckpoint          │    │ Republish (timeout, expired link; bounded)
      ▼                        ▼    │
    awaiting_code ◄──GotCheckpoint── submitting
      │    ▲                        ▲    │
      │    └──SolutionRejected──────┘    │ GotPublished
      └────────────Submit───────────────┘ ▼ published

    Hold:   publishing/submitting/retrying -> held (an account-level error);
            Resume: held -> publishing (the account is usable again; a fresh key)
    Stall:  publishing/submitting -> retrying (the API failed past the retry
            budget; the same call is re-sent, and its answer moves the draft on
            as it would have moved the publishing/submitting draft)
    Fail:   any state but published/failed/cancelled -> failed
    Cancel: queued/awaiting_code/held/retrying -> cancelled (an operator's request;
            a draft in the middle of a call finishes that call first)
    Retry:  failed/cancelled -> queued (only on request: the bot never moves them)

(Over 250 lines: the states, the events and the table are read together;
split, the life cycle could no longer be read in one place.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, get_args

from otp_bot.vocabulary import CheckpointType, InputForm


class State(StrEnum):
    # Waiting for its turn: the account solves one checkpoint at a time.
    QUEUED = "queued"
    # A publish call is (or may be) in flight under ``idempotency_key``.
    PUBLISHING = "publishing"
    # LinkedIn asked for ``checkpoint`` at ``since``; waiting for its e-mail.
    AWAITING_CODE = "awaiting_code"
    # An input is (or may be) in flight under ``idempotency_key``.
    SUBMITTING = "submitting"
    # Terminal: the job exists (``job_state`` says whether live or in review).
    PUBLISHED = "published"
    # Terminal for the bot: ``error`` says why. Only a user's ``Retry`` re-queues it.
    FAILED = "failed"
    # The account answered an account-level error (``error``) to this draft's
    # call: it waits, holding the slot, until the account is usable again, then
    # publishes again under a fresh key. Drafts added meanwhile stay queued.
    HELD = "held"
    # The API failed (network, 5xx, timeouts) past the client's retry budget:
    # the call in flight (publish, or the submit of ``input_hash``) is re-sent
    # under the same key with backoff, until the draft deadline.
    RETRYING = "retrying"
    # Terminal: an operator cancelled the draft. A ``Retry`` re-queues it.
    CANCELLED = "cancelled"


# The states a draft never leaves by itself (only a user's ``Retry`` moves a failed
# or cancelled one).
TERMINAL = frozenset({State.PUBLISHED, State.FAILED, State.CANCELLED})
# The states in which a draft holds its account's one checkpoint slot.
ACTIVE = frozenset(
    {State.PUBLISHING, State.AWAITING_CODE, State.SUBMITTING, State.HELD, State.RETRYING}
)
# A call to the API is (or may be) in flight under the draft's idempotency key.
IN_CALL = frozenset({State.PUBLISHING, State.SUBMITTING, State.RETRYING})


@dataclass(frozen=True, slots=True)
class Draft:
    """One postpress draft as otp-bot tracks it."""

    account_id: str
    draft_id: str
    state: State
    created_at: datetime
    updated_at: datetime
    options: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: CheckpointType | None = None  # while one is pending
    since: datetime | None = None  # when that checkpoint was issued
    job_id: str | None = None
    job_state: str | None = None
    error: str | None = None  # "errors/..." from the API, or an otp-bot reason
    error_detail: str | None = None
    republishes: int = 0
    idempotency_key: str | None = None  # of the publish/submit attempt in flight
    input_hash: str | None = None  # the input in flight (its value is in the store)
    input_form: InputForm | None = None  # of the input in flight

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view for ``otp-bot status --json`` and ``GET /drafts``."""
        return {
            "account_id": self.account_id,
            "draft_id": self.draft_id,
            "state": self.state.value,
            "job_id": self.job_id,
            "job_state": self.job_state,
            "checkpoint": self.checkpoint,
            "since": _iso(self.since),
            "error": self.error,
            "error_detail": self.error_detail,
            "republishes": self.republishes,
            "options": dict(self.options),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def new_draft(
    account_id: str,
    draft_id: str,
    now: datetime,
    options: Mapping[str, Any] | None = None,
    checkpoint: CheckpointType | None = None,
) -> Draft:
    """A queued draft; ``checkpoint``: one already issued to someone else's publish."""
    return Draft(
        account_id=account_id,
        draft_id=draft_id,
        state=State.QUEUED,
        created_at=now,
        updated_at=now,
        options=dict(options or {}),
        checkpoint=checkpoint,
        since=now if checkpoint else None,
    )


# --- events: each says what it changes and how the history shows it --------


@dataclass(frozen=True, slots=True)
class StartPublish:
    """The draft's turn came: publish under a fresh idempotency key."""

    idempotency_key: str

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(draft, idempotency_key=self.idempotency_key)

    def describe(self) -> str:
        return "publish"


@dataclass(frozen=True, slots=True)
class Republish:
    """Publish again for a fresh e-mail (code timeout, expired link)."""

    reason: str
    idempotency_key: str

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(
            draft,
            idempotency_key=self.idempotency_key,
            republishes=draft.republishes + 1,
            checkpoint=None,
            since=None,
        )

    def describe(self) -> str:
        return f"publish again: {self.reason}"


@dataclass(frozen=True, slots=True)
class GotCheckpoint:
    """LinkedIn asks for an input; ``issued_at`` defaults to ``now``."""

    type: CheckpointType
    job_id: str | None = None
    issued_at: datetime | None = None

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(
            draft,
            checkpoint=self.type,
            since=self.issued_at or now,
            job_id=self.job_id or draft.job_id,
        )

    def describe(self) -> str:
        return f"{self.type} checkpoint" + (f" for job {self.job_id}" if self.job_id else "")


@dataclass(frozen=True, slots=True)
class GotPublished:
    """The job exists (``note``: e.g. it was already published)."""

    job_id: str | None
    job_state: str | None
    note: str | None = None

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(
            draft,
            job_id=self.job_id or draft.job_id,
            job_state=self.job_state or draft.job_state,
            checkpoint=None,
            since=None,
        )

    def describe(self) -> str:
        text = f"published: job {self.job_id or '?'} is {self.job_state or 'unknown'}"
        return text + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True, slots=True)
class Submit:
    """Send an input from an e-mail; ``shown`` is its masked form for humans."""

    idempotency_key: str
    input_hash: str
    form: InputForm
    shown: str

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(
            draft,
            idempotency_key=self.idempotency_key,
            input_hash=self.input_hash,
            input_form=self.form,
        )

    def describe(self) -> str:
        return f"submit {self.form} {self.shown}"


@dataclass(frozen=True, slots=True)
class SolutionRejected:
    """The input is burnt; wait for another one for the same checkpoint."""

    reason: str

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return draft

    def describe(self) -> str:
        return f"input rejected: {self.reason}"


@dataclass(frozen=True, slots=True)
class Fail:
    """The draft cannot go further."""

    error: str
    detail: str | None = None

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(draft, error=self.error, error_detail=self.detail)

    def describe(self) -> str:
        return f"failed: {self.error}" + (f" - {self.detail}" if self.detail else "")


@dataclass(frozen=True, slots=True)
class Hold:
    """An account-level error answered the draft's call: wait for the account."""

    error: str
    detail: str | None = None

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(
            draft, error=self.error, error_detail=self.detail, checkpoint=None, since=None
        )

    def describe(self) -> str:
        return f"held: {self.error}; publishes again once the account is usable"


@dataclass(frozen=True, slots=True)
class Resume:
    """The account is usable again: publish the held draft under a fresh key."""

    idempotency_key: str
    via: str = "probe"  # what showed the account usable: probe | publish | restart

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(draft, idempotency_key=self.idempotency_key)

    def describe(self) -> str:
        return f"account usable again ({self.via}): publish"


@dataclass(frozen=True, slots=True)
class Stall:
    """The API failed past the retry budget: keep the call (key, input) to re-send it.

    ``first_sent``: when the call was first sent (the publishing/submitting
    draft's ``updated_at``); an answer's checkpoint counts from then on.
    """

    error: str
    detail: str | None
    first_sent: datetime

    def effect(self, draft: Draft, now: datetime) -> Draft:
        # ``advance`` kept the call's key and input (see KEEPS_CALL).
        return replace(
            draft, error=self.error, error_detail=self.detail, since=draft.since or self.first_sent
        )

    def describe(self) -> str:
        return f"API unreachable: {self.error}; the same call is re-sent with backoff"


@dataclass(frozen=True, slots=True)
class Cancel:
    """An operator stopped the draft."""

    reason: str = "cancelled by the operator"

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(draft, error_detail=self.reason, checkpoint=None, since=None)

    def describe(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Retry:
    """A user asked to try a failed draft again: a fresh attempt, same job and history."""

    previous_error: str | None = None

    def effect(self, draft: Draft, now: datetime) -> Draft:
        return replace(
            draft, republishes=0, error=None, error_detail=None, checkpoint=None, since=None
        )

    def describe(self) -> str:
        return "retry requested" + (f" after {self.previous_error}" if self.previous_error else "")


Event = (
    StartPublish
    | Republish
    | GotCheckpoint
    | GotPublished
    | Submit
    | SolutionRejected
    | Fail
    | Retry
    | Hold
    | Resume
    | Stall
    | Cancel
)

_Q, _P, _A, _S = State.QUEUED, State.PUBLISHING, State.AWAITING_CODE, State.SUBMITTING
_H, _R, _C = State.HELD, State.RETRYING, State.CANCELLED
# The life cycle: (state, event type) -> next state. Anything else is illegal.
TRANSITIONS: dict[tuple[State, type[Event]], State] = {
    (_Q, StartPublish): _P,
    (_Q, GotCheckpoint): _A,  # a checkpoint registered by whoever published it
    (_Q, Fail): State.FAILED,
    (_Q, Cancel): _C,
    (_P, GotPublished): State.PUBLISHED,
    (_P, GotCheckpoint): _A,
    (_P, Fail): State.FAILED,
    (_P, Hold): _H,
    (_P, Stall): _R,
    (_A, Submit): _S,
    (_A, Republish): _P,
    (_A, Fail): State.FAILED,
    (_A, Cancel): _C,
    (_S, GotPublished): State.PUBLISHED,
    (_S, GotCheckpoint): _A,
    (_S, SolutionRejected): _A,
    (_S, Republish): _P,
    (_S, Fail): State.FAILED,
    (_S, Hold): _H,
    (_S, Stall): _R,
    # The re-sent call's answer moves a retrying draft as it would have moved
    # the publishing/submitting draft; a failed re-send commits nothing.
    (_R, GotPublished): State.PUBLISHED,
    (_R, GotCheckpoint): _A,
    (_R, SolutionRejected): _A,
    (_R, Republish): _P,
    (_R, Fail): State.FAILED,  # an error answer, or the draft deadline passed
    (_R, Hold): _H,
    (_R, Cancel): _C,
    (_H, Resume): _P,
    (_H, Fail): State.FAILED,
    (_H, Cancel): _C,
    # Only ever on a user's request (``add_draft(retry=True)``, ``retry --failed``).
    (State.FAILED, Retry): _Q,
    (_C, Retry): _Q,
}
# Events whose draft keeps the call in flight (its key and input) to re-send it.
KEEPS_CALL: tuple[type[Event], ...] = (Stall,)
EVENT_TYPES: tuple[type[Event], ...] = get_args(Event)


class IllegalTransition(Exception):
    """An event that the draft's state does not allow (a bug, never an API answer)."""

    def __init__(self, draft: Draft, event: Event) -> None:
        self.state = draft.state
        self.event = event
        super().__init__(
            f"draft {draft.draft_id}: {event_name(event)} is not allowed in state {draft.state}"
        )


def target_of(draft: Draft, event: Event) -> State | None:
    """The state ``event`` moves ``draft`` to, or None when the move is illegal.

    The table, and one rule it cannot say: only an input in flight can be
    rejected (a retrying draft re-sends a publish or a submit).
    """
    if isinstance(event, SolutionRejected) and draft.input_hash is None:
        return None
    return TRANSITIONS.get((draft.state, type(event)))


def advance(draft: Draft, event: Event, now: datetime) -> Draft:
    """The draft after ``event`` at ``now``; raises ``IllegalTransition``."""
    target = target_of(draft, event)
    if target is None:
        raise IllegalTransition(draft, event)
    cleared = replace(draft, state=target, updated_at=now, error=None, error_detail=None)
    if not isinstance(event, KEEPS_CALL):
        cleared = replace(cleared, idempotency_key=None, input_hash=None, input_form=None)
    return event.effect(cleared, now)


def republish_or_fail(draft: Draft, *, reason: str, limit: int, key: str) -> Republish | Fail:
    """Publish again while the bound allows, else fail with ``reason``."""
    if draft.republishes < limit:
        return Republish(reason=reason, idempotency_key=key)
    return Fail(
        error=reason,
        detail=f"{reason}; gave up after publishing again {draft.republishes} time(s)",
    )


def event_name(event: Event) -> str:
    """``GotCheckpoint`` -> ``got_checkpoint`` (the draft history's event column)."""
    name = type(event).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
