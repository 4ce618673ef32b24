"""The state database: durable watermark, Message-ID dedup, schema versions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from otp_bot.errors import StoreError
from otp_bot.store.db import MIGRATIONS, Store, Watermark
from otp_bot.store.evidence import FORGET, NEWEST_CONSUMED


def test_watermark_survives_reopen(tmp_path: Path) -> None:
    """A watermark written by one Store is read back by the next one."""
    path = tmp_path / "state" / "db.sqlite3"
    store = Store(path)
    assert store.watermark("acc", "INBOX") is None
    store.set_watermark("acc", "INBOX", Watermark(uidvalidity=11, last_uid=5))
    store.set_watermark("acc", "INBOX", Watermark(uidvalidity=11, last_uid=9))
    store.close()
    again = Store(path)
    assert again.watermark("acc", "INBOX") == Watermark(11, 9)
    assert again.watermark("other", "INBOX") is None


def test_message_ids_once_per_account(tmp_path: Path) -> None:
    """A Message-ID is recorded once per account; other accounts are separate."""
    store = Store(tmp_path / "db.sqlite3")
    assert not store.message_seen("acc", "<a@linkedin.com>")
    for uid in (1, 2):  # the same message handled twice: one row, no error
        store.record_handled("acc", "INBOX", Watermark(1, uid), ["<a@linkedin.com>"])
    assert store.query("SELECT COUNT(*) FROM seen_message")[0][0] == 1
    assert store.message_seen("acc", "<a@linkedin.com>")
    assert not store.message_seen("acc2", "<a@linkedin.com>")


def test_old_message_ids_forgotten(tmp_path: Path) -> None:
    """Message-IDs older than the cut-off are dropped; newer ones and other accounts stay."""
    store = Store(tmp_path / "db.sqlite3")
    with store.transaction() as db:
        db.execute("INSERT INTO seen_message VALUES ('acc', 'old', '2020-01-01T00:00:00+00:00')")
        db.execute("INSERT INTO seen_message VALUES ('acc2', 'old', '2020-01-01T00:00:00+00:00')")
    store.record_handled("acc", "INBOX", Watermark(1, 1), ["new"])
    cutoff = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert store.forget_seen_messages("acc", cutoff) == 1
    assert not store.message_seen("acc", "old")
    assert store.message_seen("acc", "new")
    assert store.message_seen("acc2", "old")


def test_wal_and_schema_version(tmp_path: Path) -> None:
    """The database is in WAL mode and at the newest schema version."""
    path = tmp_path / "db.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_newer_schema_refused(tmp_path: Path) -> None:
    """A database from a newer otp-bot is refused with a clear message."""
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="upgrade otp-bot"):
        Store(path)


def test_unwritable_state_dir(tmp_path: Path) -> None:
    """A state directory that cannot be created is a StoreError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="file"):
        Store(blocker / "sub" / "db.sqlite3")


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    """An exception inside a transaction leaves nothing behind."""
    store = Store(tmp_path / "db.sqlite3")

    def insert_then_fail() -> None:
        with store.transaction() as db:
            db.execute("INSERT INTO seen_message VALUES ('acc', 'm1', 'now')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    assert not store.message_seen("acc", "m1")


@pytest.mark.parametrize(
    ("sql", "index"), [(NEWEST_CONSUMED, "evidence_consumed"), (FORGET, "evidence_held")]
)
def test_the_reads_each_draft_makes_search_their_partial_index(
    tmp_path: Path, sql: str, index: str
) -> None:
    """An account's e-mail rows are kept for ever: these two reads must search only the
    rows they need (a partial index), never walk the account's whole history."""
    store = Store(tmp_path / "state.sqlite3")
    plan = " ".join(
        row[3] for row in store.query(f"EXPLAIN QUERY PLAN {sql}", ("acc", "x")[: sql.count("?")])
    )
    store.close()
    assert f"SEARCH evidence USING INDEX {index} (account_id=?" in plan
