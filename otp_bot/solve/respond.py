"""What an API answer makes a draft do: docs/lifecycle.md's answer table as one pure function.

| answer                                   | event                                  |
|------------------------------------------|----------------------------------------|
| 200 Published                            | GotPublished (input accepted)          |
| 200 Checkpoint                           | GotCheckpoint, since = call first sent |
| 422 action_already_performed             | GotPublished (idempotent success)      |
| 401 invalid_checkpoint_solution (submit) | SolutionRejected: next form or e-mail  |
| input refused before sending (submit)    | SolutionRejected                       |
| 401 expired_link (submit)                | Republish, or Fail once over the bound |
| credential and account types             | Hold: the account is held, the draft   |
|                                          | waits and publishes again once usable  |
| transient, after the client's retries    | Stall: re-send the same call later     |
| anything else, unreadable answers        | Fail with the type                     |

A ``retrying`` draft's re-sent call is judged as the call it re-sends: a
submit when it holds an input, else a publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from otp_bot.errors import (
    AccountError,
    AlreadyPerformed,
    ApiError,
    ExpiredLink,
    InputRejected,
    InvalidSolution,
    OtpBotError,
    ProtocolError,
    TransientError,
)
from otp_bot.postpress.wire import Answer, Checkpoint, Published
from otp_bot.solve.drafts import (
    Draft,
    Event,
    Fail,
    GotCheckpoint,
    GotPublished,
    Hold,
    SolutionRejected,
    Stall,
    State,
    republish_or_fail,
)

Outcome: TypeAlias = Answer | OtpBotError
PROTOCOL_ERROR = "protocol_error"
INPUT_REJECTED = "input_rejected"


@dataclass(frozen=True, slots=True)
class Reaction:
    """The event to commit, and what else the worker must do about it."""

    event: Event
    accepted: bool = False  # the submitted input passed: consume its e-mail
    spent: bool = False  # the submitted input's e-mail is dead (expired): consume it too
    hold: str | None = None  # an account error: hold the account with this type
    unreachable: bool = False  # the API failed past the retry budget (an outage)
    unknown: bool = False  # the error type is not in our table (say so in the log)


def react(draft: Draft, outcome: Outcome, *, republish_limit: int, new_key: str) -> Reaction:
    """The reaction of a ``publishing``, ``submitting`` or ``retrying`` draft to an outcome."""
    submitting = draft.state is State.SUBMITTING or (
        draft.state is State.RETRYING and draft.input_hash is not None
    )
    if isinstance(outcome, Published | Checkpoint):
        return Reaction(_success(draft, outcome), accepted=submitting)
    if isinstance(outcome, ApiError):
        return _api_error(draft, outcome, submitting, republish_limit, new_key)
    if isinstance(outcome, InputRejected):
        if submitting:
            return Reaction(SolutionRejected(INPUT_REJECTED))
        return Reaction(Fail(INPUT_REJECTED, str(outcome)))
    if isinstance(outcome, ProtocolError):
        return Reaction(Fail(PROTOCOL_ERROR, str(outcome)))
    return Reaction(Fail(type(outcome).__name__, str(outcome)))


def _success(draft: Draft, answer: Answer) -> Event:
    if isinstance(answer, Published):
        return GotPublished(answer.job_id, answer.job_state)
    # The checkpoint was issued at the earliest when this call was first sent,
    # which is when the draft entered publishing/submitting. A retried or,
    # after a crash, replayed call answers later, but LinkedIn's e-mail may be
    # as old as that first send: it must still count. A retrying draft keeps
    # that time in ``since`` (or its checkpoint's, earlier still).
    first_sent = draft.since if draft.state is State.RETRYING else draft.updated_at
    return GotCheckpoint(answer.type, answer.job_id, issued_at=first_sent)


def _api_error(
    draft: Draft, error: ApiError, submitting: bool, limit: int, new_key: str
) -> Reaction:
    unknown = not error.known
    if isinstance(error, AlreadyPerformed):
        return Reaction(GotPublished(None, None, note=error.type), accepted=submitting)
    if submitting and isinstance(error, InvalidSolution):
        return Reaction(SolutionRejected(error.type), unknown=unknown)
    if submitting and isinstance(error, ExpiredLink):
        event = republish_or_fail(draft, reason=error.type, limit=limit, key=new_key)
        return Reaction(event, spent=True, unknown=unknown)
    if isinstance(error, AccountError):
        return Reaction(Hold(error.type, str(error)), hold=error.type, unknown=unknown)
    if isinstance(error, TransientError):
        detail = f"still failing after the client's bounded retries: {error}"
        stall = Stall(error.type, detail, first_sent=draft.updated_at)
        return Reaction(stall, unreachable=True, unknown=unknown)
    return Reaction(Fail(error.type, str(error)), unknown=unknown)
