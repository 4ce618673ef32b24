"""design.md's answer table: what each API outcome makes a publishing or submitting draft do."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from otp_bot.errors import ApiProblem, InputRejected, ProtocolError, classify
from otp_bot.postpress.wire import Checkpoint, Published
from otp_bot.solve import drafts as d
from otp_bot.solve.drafts import State
from otp_bot.solve.respond import Reaction, react

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def draft_in(state: State, republishes: int = 0) -> d.Draft:
    return replace(d.new_draft("acc", "D1", T0), state=state, republishes=republishes)


def error(status: int, kind: str) -> Exception:
    return classify(ApiProblem(status=status, type=f"errors/{kind}" if kind else ""))


def reaction(state: State, outcome: object, republishes: int = 0) -> Reaction:
    return react(
        draft_in(state, republishes),
        outcome,  # type: ignore[arg-type]
        republish_limit=2,
        new_key="fresh",
    )


@pytest.mark.parametrize("state", [State.PUBLISHING, State.SUBMITTING])
def test_published_and_already_performed_publish(state: State) -> None:
    """200 Published and 422 action_already_performed both end in published."""
    ok = reaction(state, Published("job-1", "review"))
    assert ok.event == d.GotPublished("job-1", "review")
    done = reaction(state, error(422, "action_already_performed"))
    assert isinstance(done.event, d.GotPublished)
    assert ok.accepted is done.accepted is (state is State.SUBMITTING)


def test_checkpoint_since_is_when_the_call_was_first_sent() -> None:
    """A Checkpoint answer dates the checkpoint from the attempt's start, not the answer."""
    result = reaction(State.SUBMITTING, Checkpoint("job-1", "OTP"))
    assert result.event == d.GotCheckpoint("OTP", "job-1", issued_at=T0)
    assert result.accepted


def test_invalid_solution_burns_the_input_only() -> None:
    """invalid_checkpoint_solution and an unsendable input go back to waiting."""
    assert isinstance(
        reaction(State.SUBMITTING, error(401, "invalid_checkpoint_solution")).event,
        d.SolutionRejected,
    )
    assert isinstance(reaction(State.SUBMITTING, InputRejected("x")).event, d.SolutionRejected)
    assert reaction(State.PUBLISHING, InputRejected("bad id")).event == d.Fail(
        "input_rejected", "bad id"
    )


def test_expired_link_republishes_within_the_bound() -> None:
    """expired_link publishes again with a fresh key until the bound, then fails."""
    expired = reaction(State.SUBMITTING, error(401, "expired_link"))
    assert expired.event == d.Republish("errors/expired_link", "fresh")
    assert expired.spent  # the whole e-mail is dead, its PIN too
    assert not expired.accepted
    over = reaction(State.SUBMITTING, error(401, "expired_link"), republishes=2).event
    assert isinstance(over, d.Fail)
    assert over.error == "errors/expired_link"


@pytest.mark.parametrize(
    "kind", ["disconnected_account", "expired_credentials", "account_restricted"]
)
@pytest.mark.parametrize("state", [State.PUBLISHING, State.SUBMITTING, State.RETRYING])
def test_account_errors_hold_the_draft_and_the_account(kind: str, state: State) -> None:
    """Credential and account types hold the draft (it waits) and the account."""
    status = 403 if kind == "account_restricted" else 401
    result = reaction(state, error(status, kind))
    assert result.hold == f"errors/{kind}"
    assert result.event == d.Hold(f"errors/{kind}", str(error(status, kind)))
    assert not result.unreachable


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_parameters"), (404, "resource_not_found"), (401, "checkpoint_error")],
)
def test_draft_errors_fail_only_the_draft(status: int, kind: str) -> None:
    """400, 404, other 422 and checkpoint_error fail the draft with that type."""
    result = reaction(State.SUBMITTING, error(status, kind))
    assert result.event == d.Fail(f"errors/{kind}", str(error(status, kind)))
    assert result.hold is None


@pytest.mark.parametrize("state", [State.PUBLISHING, State.SUBMITTING])
def test_transient_after_retries_stalls_and_protocol_errors_fail(state: State) -> None:
    """Transient errors that outlived the client's retries stall (re-sent later), dated from
    the call's first send; unreadable answers fail."""
    result = reaction(state, error(503, "service_unavailable"))
    assert result.unreachable
    assert isinstance(result.event, d.Stall)
    assert result.event.error == "errors/service_unavailable"
    assert result.event.first_sent == T0
    assert "retries" in (result.event.detail or "")
    broken = reaction(state, ProtocolError("not JSON")).event
    assert broken == d.Fail("protocol_error", "not JSON")


def test_a_retrying_draft_is_judged_as_the_call_it_resends() -> None:
    """A re-sent submit (an input kept) can be rejected; a re-sent publish cannot."""
    resubmit = replace(draft_in(State.RETRYING), input_hash="h", checkpoint="OTP", since=T0)
    rejected = react(resubmit, error(401, "invalid_checkpoint_solution"), republish_limit=2,
                     new_key="k")  # fmt: skip
    assert rejected.event == d.SolutionRejected("errors/invalid_checkpoint_solution")
    republish = react(draft_in(State.RETRYING), error(401, "invalid_checkpoint_solution"),
                      republish_limit=2, new_key="k")  # fmt: skip
    assert isinstance(republish.event, d.Fail)  # nothing was in flight to reject
    early = replace(draft_in(State.RETRYING), since=T0 - timedelta(minutes=5))
    answered = react(early, Checkpoint("job-1", "OTP"), republish_limit=2, new_key="k")
    assert answered.event == d.GotCheckpoint("OTP", "job-1", issued_at=T0 - timedelta(minutes=5))


def test_unknown_type_goes_by_status_class_and_is_flagged() -> None:
    """An errors/... type outside the table acts by its status class and is flagged."""
    result = reaction(State.PUBLISHING, error(403, "brand_new_type"))
    assert result.unknown
    assert result.hold == "errors/brand_new_type"
