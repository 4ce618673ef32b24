"""The draft life cycle: one transition table, illegal moves raise."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otp_bot.solve import drafts as d
from otp_bot.solve.drafts import State

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)

EVENTS: list[d.Event] = [
    d.StartPublish("key-1"),
    d.Republish("code_timeout", "key-2"),
    d.GotCheckpoint("OTP", "job-1"),
    d.GotPublished("job-1", "active"),
    d.Submit("key-3", "hash", "code", "****56"),
    d.SolutionRejected("errors/invalid_checkpoint_solution"),
    d.Fail("errors/resource_not_found", "no such draft"),
    d.Retry("errors/resource_not_found"),
    d.Hold("errors/disconnected_account", "the account is disconnected"),
    d.Resume("key-4"),
    d.Stall("network_error", "no answer", first_sent=T0),
    d.Cancel(),
]


def draft_in(state: State) -> d.Draft:
    return replace(d.new_draft("acc", "D1", T0), state=state)


def test_every_event_type_is_listed_once() -> None:
    """The walk below covers every event type the table knows."""
    assert {type(e) for e in EVENTS} == set(d.EVENT_TYPES)
    assert {event for _, event in d.TRANSITIONS} == set(d.EVENT_TYPES)


PAIRS = [(state, event) for state in State for event in EVENTS]


@pytest.mark.parametrize(
    ("state", "event"), PAIRS, ids=[f"{s}-{d.event_name(e)}" for s, e in PAIRS]
)
def test_every_state_event_pair(state: State, event: d.Event) -> None:
    """Each (state, event) pair: legal lands on the table's target, illegal raises."""
    draft = draft_in(state)
    if state is State.SUBMITTING:
        draft = replace(draft, idempotency_key="k", input_hash="h")
    target = d.TRANSITIONS.get((state, type(event)))
    if isinstance(event, d.SolutionRejected) and draft.input_hash is None:
        target = None  # only an input in flight can be rejected
    if target is None:
        with pytest.raises(d.IllegalTransition):
            d.advance(draft, event, T1)
        return
    after = d.advance(draft, event, T1)
    assert after.state is target
    assert after.updated_at == T1
    assert after.draft_id == draft.draft_id


@given(st.lists(st.sampled_from(EVENTS), max_size=40))
def test_random_walks_follow_the_table_and_keep_invariants(events: list[d.Event]) -> None:
    """Any event sequence moves only along the table, and the draft stays coherent."""
    draft = d.new_draft("acc", "D1", T0)
    for step, event in enumerate(events, start=1):
        target = d.TRANSITIONS.get((draft.state, type(event)))
        if isinstance(event, d.SolutionRejected) and draft.input_hash is None:
            target = None  # only an input in flight can be rejected
        if target is None:
            with pytest.raises(d.IllegalTransition):
                d.advance(draft, event, T0 + timedelta(seconds=step))
            continue
        after = d.advance(draft, event, T0 + timedelta(seconds=step))
        assert after.state is target
        if isinstance(event, d.Retry):  # a fresh attempt: the bound starts again
            assert (after.republishes, after.error, after.error_detail) == (0, None, None)
        else:
            assert after.republishes >= draft.republishes
        assert_coherent(after)
        draft = after


def assert_coherent(draft: d.Draft) -> None:
    """The fields each state implies: a call's key and input, a checkpoint, an error."""
    state = draft.state
    assert (draft.idempotency_key is not None) is (state in d.IN_CALL)
    resubmit = state is State.RETRYING and draft.checkpoint is not None
    assert (draft.input_hash is not None) is (state is State.SUBMITTING or resubmit)
    errors = {State.FAILED, State.HELD, State.RETRYING}
    assert (draft.error is not None) is (state in errors)
    if state not in d.TERMINAL:
        waiting = state in {State.AWAITING_CODE, State.SUBMITTING}
        assert (draft.checkpoint is not None) is (waiting or resubmit)
        assert (draft.since is not None) is (waiting or state is State.RETRYING)


def test_terminal_states_accept_nothing_but_a_retry_of_a_failed_or_cancelled_draft() -> None:
    """No event moves a published draft; failed and cancelled ones move only on Retry."""
    for event in EVENTS:
        with pytest.raises(d.IllegalTransition):
            d.advance(draft_in(State.PUBLISHED), event, T1)
    for state in (State.FAILED, State.CANCELLED):
        for event in EVENTS:
            if isinstance(event, d.Retry):
                assert d.advance(draft_in(state), event, T1).state is State.QUEUED
            else:
                with pytest.raises(d.IllegalTransition):
                    d.advance(draft_in(state), event, T1)
    retries = [key for key in d.TRANSITIONS if key[1] is d.Retry]
    assert retries == [(State.FAILED, d.Retry), (State.CANCELLED, d.Retry)]
    assert {State.PUBLISHED, State.FAILED, State.CANCELLED} == d.TERMINAL


def test_cancel_stops_every_waiting_state_but_never_a_call_in_flight() -> None:
    """Cancel is legal from queued, awaiting_code, held and retrying; never mid-call."""
    legal = {state for state, event in d.TRANSITIONS if event is d.Cancel}
    assert legal == {State.QUEUED, State.AWAITING_CODE, State.HELD, State.RETRYING}
    assert not legal & {State.PUBLISHING, State.SUBMITTING}
    draft = d.advance(draft_in(State.QUEUED), d.GotCheckpoint("OTP", issued_at=T0), T0)
    cancelled = d.advance(draft, d.Cancel(), T1)
    assert (cancelled.state, cancelled.checkpoint, cancelled.since) == (State.CANCELLED, None, None)
    assert cancelled.error_detail == "cancelled by the operator"


def test_hold_then_resume_publishes_again_under_a_fresh_key() -> None:
    """A held draft keeps the account error, forgets its checkpoint, resumes with a new key."""
    draft = d.advance(draft_in(State.QUEUED), d.GotCheckpoint("OTP", issued_at=T0), T0)
    draft = d.advance(draft, d.Submit("k1", "h", "code", "****12"), T0)
    held = d.advance(draft, d.Hold("errors/expired_credentials", "401"), T1)
    assert (held.state, held.error, held.checkpoint, held.since) == (
        State.HELD,
        "errors/expired_credentials",
        None,
        None,
    )
    assert (held.idempotency_key, held.input_hash) == (None, None)
    resumed = d.advance(held, d.Resume("k2"), T1)
    assert (resumed.state, resumed.idempotency_key, resumed.error) == (State.PUBLISHING, "k2", None)
    assert resumed.republishes == draft.republishes  # a hold costs no re-publish


def test_stall_keeps_the_call_to_resend_it() -> None:
    """A stalled submit keeps its key, input and checkpoint; its answer moves it on."""
    draft = d.advance(draft_in(State.QUEUED), d.GotCheckpoint("OTP", issued_at=T0), T0)
    draft = d.advance(draft, d.Submit("k1", "h", "code", "****12"), T0)
    stalled = d.advance(draft, d.Stall("errors/service_unavailable", "503", first_sent=T0), T1)
    assert stalled.state is State.RETRYING
    assert (stalled.idempotency_key, stalled.input_hash, stalled.input_form) == ("k1", "h", "code")
    assert (stalled.checkpoint, stalled.since, stalled.error) == (
        "OTP",
        T0,
        "errors/service_unavailable",
    )
    published = d.advance(stalled, d.GotPublished("job-1", "active"), T1)
    assert (published.state, published.error, published.input_hash) == (
        State.PUBLISHED,
        None,
        None,
    )
    publishing = d.advance(draft_in(State.QUEUED), d.StartPublish("k9"), T0)
    stalled = d.advance(publishing, d.Stall("network_error", None, first_sent=T0), T1)
    assert (stalled.idempotency_key, stalled.input_hash, stalled.since) == ("k9", None, T0)


def test_retry_starts_afresh_but_keeps_the_job_and_the_creation() -> None:
    """Retry clears the error, the bound's count and any checkpoint; job_id and created_at stay."""
    draft = d.advance(draft_in(State.QUEUED), d.GotCheckpoint("OTP", "job-7", issued_at=T0), T0)
    draft = d.advance(draft, d.Republish("code_timeout", "k1"), T0)
    draft = d.advance(draft, d.GotCheckpoint("OTP"), T0)
    draft = d.advance(draft, d.Fail("code_timeout", "gave up after 1"), T0)
    assert (draft.republishes, draft.checkpoint) == (1, "OTP")
    retried = d.advance(draft, d.Retry(draft.error), T1)
    assert retried.state is State.QUEUED
    assert (retried.republishes, retried.error, retried.error_detail) == (0, None, None)
    assert (retried.checkpoint, retried.since, retried.idempotency_key) == (None, None, None)
    assert (retried.input_hash, retried.input_form) == (None, None)
    assert (retried.job_id, retried.created_at, retried.updated_at) == ("job-7", T0, T1)
    assert d.event_name(d.Retry()) == "retry"
    assert d.Retry("code_timeout").describe() == "retry requested after code_timeout"


def test_happy_path_with_checkpoint() -> None:
    """queued -> publishing -> awaiting_code -> submitting -> published, with the fields."""
    draft = d.new_draft("acc", "D1", T0, {"mode": "FREE"})
    draft = d.advance(draft, d.StartPublish("k1"), T0)
    assert (draft.state, draft.idempotency_key) == (State.PUBLISHING, "k1")
    draft = d.advance(draft, d.GotCheckpoint("EMAIL_VERIFICATION", "job-9"), T1)
    assert (draft.checkpoint, draft.since, draft.job_id) == ("EMAIL_VERIFICATION", T1, "job-9")
    assert draft.idempotency_key is None
    draft = d.advance(draft, d.Submit("k2", "h", "link", "https://x?…"), T1)
    assert (draft.idempotency_key, draft.input_hash, draft.input_form) == ("k2", "h", "link")
    draft = d.advance(draft, d.GotPublished(None, "review"), T1)
    assert draft.state is State.PUBLISHED
    assert (draft.job_id, draft.job_state) == ("job-9", "review")
    assert draft.input_hash is None
    assert draft.checkpoint is None


def test_rejected_input_keeps_the_checkpoint_and_its_since() -> None:
    """After invalid_checkpoint_solution the draft waits again for the same checkpoint."""
    draft = d.advance(draft_in(State.QUEUED), d.GotCheckpoint("OTP", issued_at=T0), T0)
    draft = d.advance(draft, d.Submit("k", "h", "code", "****12"), T1)
    draft = d.advance(draft, d.SolutionRejected("errors/invalid_checkpoint_solution"), T1)
    assert (draft.state, draft.checkpoint, draft.since) == (State.AWAITING_CODE, "OTP", T0)
    assert draft.input_hash is None


def test_republish_counts_and_clears_the_checkpoint() -> None:
    """Republish bumps the counter, forgets the old checkpoint and takes a new key."""
    draft = d.advance(draft_in(State.QUEUED), d.GotCheckpoint("OTP"), T0)
    draft = d.advance(draft, d.Republish("code_timeout", "k9"), T1)
    assert draft.state is State.PUBLISHING
    assert (draft.republishes, draft.idempotency_key) == (1, "k9")
    assert (draft.checkpoint, draft.since) == (None, None)


def test_republish_or_fail_honours_the_bound() -> None:
    """Below the limit: publish again; at the limit: fail with the reason."""
    draft = replace(draft_in(State.AWAITING_CODE), republishes=2)
    assert isinstance(d.republish_or_fail(draft, reason="x", limit=3, key="k"), d.Republish)
    failed = d.republish_or_fail(
        replace(draft, republishes=3), reason="code_timeout", limit=3, key="k"
    )
    assert isinstance(failed, d.Fail)
    assert failed.error == "code_timeout"
    assert "3 time(s)" in (failed.detail or "")


def test_registered_checkpoint_starts_waiting_at_its_registration() -> None:
    """A draft added with a checkpoint keeps the registration time as since."""
    draft = d.new_draft("acc", "D1", T0, checkpoint="OTP")
    assert (draft.state, draft.since) == (State.QUEUED, T0)
    after = d.advance(draft, d.GotCheckpoint("OTP", issued_at=draft.since), T1)
    assert (after.state, after.since) == (State.AWAITING_CODE, T0)


def test_to_dict_is_json_ready_with_the_public_fields() -> None:
    """status --json and GET /drafts get the documented keys, timestamps in ISO 8601."""
    draft = d.advance(draft_in(State.QUEUED), d.Fail("errors/disconnected_account", "x"), T1)
    data = json.loads(json.dumps(draft.to_dict()))
    assert {"draft_id", "state", "job_id", "job_state", "checkpoint", "error", "updated_at"} <= set(
        data
    )
    assert data["state"] == "failed"
    assert data["error"] == "errors/disconnected_account"
    assert datetime.fromisoformat(data["updated_at"]) == T1


def test_history_lines_never_show_the_input() -> None:
    """A submit's history line shows only the masked input it was given."""
    event = d.Submit("k", "secret-hash", "pin", "****78")
    assert d.event_name(event) == "submit"
    assert d.event_name(d.GotCheckpoint("OTP")) == "got_checkpoint"
    assert event.describe() == "submit pin ****78"
    assert "secret-hash" not in event.describe()
