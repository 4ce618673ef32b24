"""Schema 3 -> 4: a database written by otp-bot up to schema 3 opens with one timestamp format."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from otp_bot.store.db import Store, Watermark
from otp_bot.store.schema import MIGRATIONS, sql_time

# What sql_time writes: fixed-width UTC with microseconds.
FIXED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
# Two instants as schema 3 wrote them (datetime.isoformat): one whose fraction is
# zero, which isoformat leaves out, and one with a fraction.
WHOLE = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
FRACTION = datetime(2026, 3, 1, 12, 0, 5, 250_000, tzinfo=UTC)


def schema_3_database(path: Path) -> None:
    """A state database exactly as otp-bot wrote it at schema 3 (the fixture).

    The schema comes from the migrations that built it; the rows are written as
    that version's ``Store.record_handled`` wrote them, with ``isoformat()``.
    """
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:3]:
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
    db.execute("PRAGMA user_version=3")
    rows = [("acc", "<whole@linkedin.com>", WHOLE), ("acc", "<frac@linkedin.com>", FRACTION)]
    for account_id, message_id, when in rows:
        db.execute(
            "INSERT INTO seen_message VALUES (?, ?, ?)", (account_id, message_id, when.isoformat())
        )
    db.execute("INSERT INTO watermark VALUES ('acc', 'INBOX', 11, 42, ?)", (WHOLE.isoformat(),))
    db.close()


def test_the_fixture_holds_both_old_forms(tmp_path: Path) -> None:
    """The schema-3 fixture really has the short (no fraction) form beside the long one."""
    path = tmp_path / "old.sqlite3"
    schema_3_database(path)
    db = sqlite3.connect(path)
    times = sorted(row[0] for row in db.execute("SELECT seen_at FROM seen_message"))
    db.close()
    assert times == ["2026-03-01T12:00:05+00:00", "2026-03-01T12:00:05.250000+00:00"]


def test_upgrade_gives_every_timestamp_one_form(tmp_path: Path) -> None:
    """After the upgrade every watermark and seen-message time is sql_time's fixed form,
    the instants unchanged, and the rest of the data kept."""
    path = tmp_path / "old.sqlite3"
    schema_3_database(path)
    store = Store(path)
    assert store.query("PRAGMA user_version")[0][0] == len(MIGRATIONS) >= 4
    seen = {row["message_id"]: row["seen_at"] for row in store.query("SELECT * FROM seen_message")}
    assert seen == {
        "<whole@linkedin.com>": sql_time(WHOLE),
        "<frac@linkedin.com>": sql_time(FRACTION),
    }
    marks = store.query("SELECT updated_at FROM watermark")
    assert [row["updated_at"] for row in marks] == [sql_time(WHOLE)]
    assert store.watermark("acc", "INBOX") == Watermark(11, 42)
    store.close()


def test_upgraded_times_compare_as_instants(tmp_path: Path) -> None:
    """A Message-ID seen exactly at the cut-off is kept and one seen before it dropped, for
    rows from schema 3 and rows written now alike (short and fixed forms once misordered)."""
    path = tmp_path / "old.sqlite3"
    schema_3_database(path)
    store = Store(path)
    assert store.forget_seen_messages("acc", WHOLE.timestamp()) == 0  # equal: not before
    assert store.message_seen("acc", "<whole@linkedin.com>")
    assert store.forget_seen_messages("acc", FRACTION.timestamp()) == 1
    assert not store.message_seen("acc", "<whole@linkedin.com>")
    assert store.message_seen("acc", "<frac@linkedin.com>")
    store.close()


def test_every_time_written_now_has_the_fixed_form(tmp_path: Path) -> None:
    """Each timestamp column the current store writes holds sql_time's form."""
    store = Store(tmp_path / "new.sqlite3")
    store.record_handled("acc", "INBOX", Watermark(1, 2), ["<a@linkedin.com>"])
    values = [
        *(row[0] for row in store.query("SELECT seen_at FROM seen_message")),
        *(row[0] for row in store.query("SELECT updated_at FROM watermark")),
    ]
    assert values
    assert all(FIXED.fullmatch(value) for value in values), values
    store.close()
