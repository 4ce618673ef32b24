"""The solver's tables: drafts survive a reopen, stale writes are refused, inputs are used once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otp_bot.errors import StoreError
from otp_bot.solve import drafts as d
from otp_bot.solve.match import Candidate, StoredEvidence
from otp_bot.store.db import Store
from otp_bot.store.drafts import DraftStore
from otp_bot.store.evidence import EvidenceStore

T0 = datetime(2026, 11, 28, 12, 0, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)


def test_draft_round_trips_through_a_reopened_database(tmp_path: Path) -> None:
    """Every field of a draft, timestamps to the microsecond, reads back after a reopen."""
    path = tmp_path / "state.sqlite3"
    store = Store(path)
    draft = DraftStore(store).insert_draft(d.new_draft("acc", "D1", T0, {"mode": "FREE"}))
    moved = d.advance(draft, d.GotCheckpoint("OTP", "job-1", issued_at=T0), T1)
    DraftStore(store).save_transition(draft, moved, d.GotCheckpoint("OTP", "job-1", T0))
    store.close()
    reopened = Store(path)
    assert DraftStore(reopened).load_drafts("acc") == [moved]
    assert DraftStore(reopened).load_drafts("other") == []
    history = DraftStore(reopened).draft_history("acc", "D1")
    assert [(h["event"], h["from_state"], h["to_state"]) for h in history] == [
        ("added", None, "queued"),
        ("got_checkpoint", "queued", "awaiting_code"),
    ]
    reopened.close()


def test_drafts_are_counted_per_state_for_one_account(tmp_path: Path) -> None:
    """count_states counts the account's drafts by state, moves included, others' not."""
    store = Store(tmp_path / "state.sqlite3")
    records = DraftStore(store)
    for name in ("D1", "D2", "D3"):
        records.insert_draft(d.new_draft("acc", name, T0))
    records.insert_draft(d.new_draft("other", "D1", T0))
    draft = records.load_drafts("acc", "D2")[0]
    records.save_transition(draft, d.advance(draft, d.StartPublish("k1"), T1), d.StartPublish("k1"))
    assert records.count_states("acc") == {"queued": 2, "publishing": 1}
    assert records.count_states("other") == {"queued": 1}
    assert records.count_states("nobody") == {}
    store.close()


def test_a_stale_transition_is_refused(tmp_path: Path) -> None:
    """Saving a move from a draft that changed meanwhile raises instead of overwriting."""
    store = Store(tmp_path / "state.sqlite3")
    records = DraftStore(store)
    draft = records.insert_draft(d.new_draft("acc", "D1", T0))
    records.save_transition(draft, d.advance(draft, d.StartPublish("k1"), T1), d.StartPublish("k1"))
    with pytest.raises(StoreError, match="changed underneath"):
        records.save_transition(draft, d.advance(draft, d.Fail("x"), T1), d.Fail("x"))
    store.close()


def test_input_is_recorded_used_with_the_submit_and_then_forgotten(tmp_path: Path) -> None:
    """The submit and its used input commit together; once answered only the hash stays."""
    store = Store(tmp_path / "state.sqlite3")
    records, evidence = DraftStore(store), EvidenceStore(store)
    mail = StoredEvidence(0, T0, "123456", None, "<m1@linkedin.com>", 7, 42)
    evidence_id = evidence.add_evidence("acc", mail, T0)
    assert evidence_id is not None
    assert evidence.add_evidence("acc", mail, T0) is None  # same Message-ID
    draft = records.insert_draft(d.new_draft("acc", "D1", T0, checkpoint="OTP"))
    waiting = d.advance(draft, d.GotCheckpoint("OTP", issued_at=T0), T0)
    records.save_transition(draft, waiting, d.GotCheckpoint("OTP", issued_at=T0))
    chosen = Candidate(evidence_id, "code", "123456")
    submit = d.Submit("k", chosen.hash, "code", "****56")
    sending = d.advance(waiting, submit, T1)
    records.save_transition(waiting, sending, submit, use=chosen)
    assert evidence.input_value("acc", chosen.hash) == "123456"
    assert evidence.used_inputs("acc", [chosen.hash], T0) == {chosen.hash}
    assert evidence.used_inputs("acc", [chosen.hash], T1 + timedelta(days=1)) == set()
    done = d.advance(sending, d.GotPublished("job", "active"), T1)
    records.save_transition(sending, done, d.GotPublished("job", "active"), accepted=True)
    assert evidence.input_value("acc", chosen.hash) is None
    assert evidence.fresh_evidence("acc", T0 - timedelta(days=1)) == []
    found = evidence.evidence_of_input("acc", chosen.hash)
    assert found is not None
    assert (found.uidvalidity, found.uid, found.code) == (7, 42, None)
    store.close()


def test_old_evidence_is_forgotten(tmp_path: Path) -> None:
    """forget_evidence drops the codes and links of e-mails older than the bound."""
    store = Store(tmp_path / "state.sqlite3")
    evidence = EvidenceStore(store)
    evidence.add_evidence("acc", StoredEvidence(0, T0, "111111", None, "<a@x>"), T0)
    evidence.add_evidence("acc", StoredEvidence(0, T1, "222222", None, "<b@x>"), T1)
    assert evidence.forget_evidence("acc", T1) == 1
    assert [e.code for e in evidence.fresh_evidence("acc", T0)] == [None, "222222"]
    store.close()
