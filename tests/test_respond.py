"""design.md's answer table: what each API outcome makes a publishing or submitting draft do."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

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
def test_account_errors_park_the_account(kind: str) -> None:
    """Credential and account types fail the draft and park the account."""
    status = 403 if kind == "account_restricted" else 401
    result = reaction(State.PUBLISHING, error(status, kind))
    assert result.park == f"errors/{kind}"
    assert isinstance(result.event, d.Fail)
    assert result.event.error == f"errors/{kind}"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_parameters"), (404, "resource_not_found"), (401, "checkpoint_error")],
)
def test_draft_errors_fail_only_the_draft(status: int, kind: str) -> None:
    """400, 404, other 422 and checkpoint_error fail the draft with that type."""
    result = reaction(State.SUBMITTING, error(status, kind))
    assert result.event == d.Fail(f"errors/{kind}", str(error(status, kind)))
    assert result.park is None


def test_transient_after_retries_and_protocol_errors_fail() -> None:
    """Transient errors that outlived the client's retries, and unreadable answers, fail."""
    transient = reaction(State.PUBLISHING, error(503, "service_unavailable")).event
    assert isinstance(transient, d.Fail)
    assert transient.error == "errors/service_unavailable"
    assert "retries" in (transient.detail or "")
    broken = reaction(State.PUBLISHING, ProtocolError("not JSON")).event
    assert broken == d.Fail("protocol_error", "not JSON")


def test_unknown_type_goes_by_status_class_and_is_flagged() -> None:
    """An errors/... type outside the table acts by its status class and is flagged."""
    result = reaction(State.PUBLISHING, error(403, "brand_new_type"))
    assert result.unknown
    assert result.park == "errors/brand_new_type"
