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
    d.Fail("errors/disconnected_account", "account parked"),
    d.Retry("errors/disconnected_account"),
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
    """Each of the 48 (state, event) pairs: legal lands on the table's target, illegal raises."""
    draft = draft_in(state)
    target = d.TRANSITIONS.get((state, type(event)))
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
        in_flight = after.state in {State.PUBLISHING, State.SUBMITTING}
        assert (after.idempotency_key is not None) is in_flight
        assert (after.input_hash is not None) is (after.state is State.SUBMITTING)
        if after.state is not State.FAILED:
            waiting = after.state in {State.AWAITING_CODE, State.SUBMITTING}
            assert (after.checkpoint is not None) is waiting
            assert (after.since is not None) is waiting
        draft = after


def test_terminal_states_accept_nothing_but_a_retry_of_a_failed_draft() -> None:
    """No event moves a published draft; a failed one moves only on Retry, to queued."""
    for event in EVENTS:
        with pytest.raises(d.IllegalTransition):
            d.advance(draft_in(State.PUBLISHED), event, T1)
    for event in EVENTS:
        if isinstance(event, d.Retry):
            assert d.advance(draft_in(State.FAILED), event, T1).state is State.QUEUED
        else:
            with pytest.raises(d.IllegalTransition):
                d.advance(draft_in(State.FAILED), event, T1)
    assert [key for key in d.TRANSITIONS if key[1] is d.Retry] == [(State.FAILED, d.Retry)]


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
