"""The state database: SQLite in WAL mode, the only module that imports sqlite3.

One file per state directory, shared by the accounts that point at it (rows
carry ``account_id``). Every write is one committed transaction with
``synchronous=FULL``, so a transition is on disk before the next side effect.
The schema is versioned by ``PRAGMA user_version``; ``MIGRATIONS[n]`` brings a
database from version n to n+1.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from otp_bot.drafts import Draft, Event, State, event_name
from otp_bot.errors import StoreError
from otp_bot.match import Candidate, StoredEvidence

MIGRATIONS: list[str] = [
    # 0 -> 1: the mailbox watermark and the Message-IDs already handled.
    """
    CREATE TABLE watermark (
        account_id  TEXT NOT NULL,
        folder      TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid    INTEGER NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (account_id, folder)
    );
    CREATE TABLE seen_message (
        account_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seen_at    TEXT NOT NULL,
        PRIMARY KEY (account_id, message_id)
    );
    """,
    # 1 -> 2: drafts, their readable history, e-mail evidence, inputs sent.
    """
    CREATE TABLE draft (
        account_id      TEXT NOT NULL,
        draft_id        TEXT NOT NULL,
        state           TEXT NOT NULL,
        checkpoint      TEXT,
        since           TEXT,
        job_id          TEXT,
        job_state       TEXT,
        error           TEXT,
        error_detail    TEXT,
        republishes     INTEGER NOT NULL DEFAULT 0,
        options         TEXT NOT NULL DEFAULT '{}',
        idempotency_key TEXT,
        input_hash      TEXT,
        input_form      TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        PRIMARY KEY (account_id, draft_id)
    );
    CREATE INDEX draft_by_state ON draft (account_id, state);
    CREATE TABLE draft_event (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        draft_id   TEXT NOT NULL,
        at         TEXT NOT NULL,
        event      TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        detail     TEXT NOT NULL
    );
    CREATE INDEX draft_event_by_draft ON draft_event (account_id, draft_id);
    CREATE TABLE evidence (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id  TEXT NOT NULL,
        message_id  TEXT,
        uidvalidity INTEGER,
        uid         INTEGER,
        received_at TEXT NOT NULL,
        code        TEXT,
        link        TEXT,
        stored_at   TEXT NOT NULL,
        consumed_at TEXT,
        UNIQUE (account_id, message_id)
    );
    CREATE INDEX evidence_fresh ON evidence (account_id, consumed_at, received_at);
    CREATE TABLE used_input (
        account_id  TEXT NOT NULL,
        input_hash  TEXT NOT NULL,
        value       TEXT NOT NULL,
        form        TEXT NOT NULL,
        draft_id    TEXT NOT NULL,
        evidence_id INTEGER NOT NULL,
        used_at     TEXT NOT NULL,
        outcome     TEXT,
        PRIMARY KEY (account_id, input_hash)
    );
    CREATE TABLE account_pref (
        account_id        TEXT PRIMARY KEY,
        verification_form TEXT,
        updated_at        TEXT NOT NULL
    );
    """,
]

# A busy database (another process holding the write lock) is waited for this
# long before the write fails; writes here take milliseconds.
BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Watermark:
    uidvalidity: int
    last_uid: int


def utcnow_text() -> str:
    return datetime.now(UTC).isoformat()


def _ts(value: datetime) -> str:
    """Fixed-width UTC text, so SQL compares timestamps as strings correctly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _evidence(row: sqlite3.Row) -> StoredEvidence:
    return StoredEvidence(
        id=row["id"],
        received_at=datetime.fromisoformat(row["received_at"]),
        code=row["code"],
        link=row["link"],
        message_id=row["message_id"],
        uidvalidity=row["uidvalidity"],
        uid=row["uid"],
    )


def _draft_values(draft: Draft) -> tuple[object, ...]:
    return (
        draft.account_id,
        draft.draft_id,
        draft.state.value,
        draft.checkpoint,
        _ts(draft.since) if draft.since else None,
        draft.job_id,
        draft.job_state,
        draft.error,
        draft.error_detail,
        draft.republishes,
        json.dumps(dict(draft.options), sort_keys=True),
        draft.idempotency_key,
        draft.input_hash,
        draft.input_form,
        _ts(draft.created_at),
        _ts(draft.updated_at),
    )


def _draft(row: sqlite3.Row) -> Draft:
    return Draft(
        account_id=row["account_id"],
        draft_id=row["draft_id"],
        state=State(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        options=json.loads(row["options"]),
        checkpoint=row["checkpoint"],
        since=_dt(row["since"]),
        job_id=row["job_id"],
        job_state=row["job_state"],
        error=row["error"],
        error_detail=row["error_detail"],
        republishes=row["republishes"],
        idempotency_key=row["idempotency_key"],
        input_hash=row["input_hash"],
        input_form=row["input_form"],
    )


def _add_event(
    db: sqlite3.Connection, draft: Draft, event: str, before: State | None, detail: str
) -> None:
    db.execute(
        "INSERT INTO draft_event (account_id, draft_id, at, event, from_state, to_state, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            draft.account_id,
            draft.draft_id,
            _ts(draft.updated_at),
            event,
            before.value if before else None,
            draft.state.value,
            detail,
        ),
    )


def _settle_input(
    db: sqlite3.Connection, old: Draft, outcome: str, *, accepted: bool, spent: bool
) -> None:
    """Record what became of ``old``'s input; consume its e-mail once accepted or spent.

    The input's value is kept only while it may have to be re-sent; once
    answered, its hash is enough to refuse it again.
    """
    key = (old.account_id, old.input_hash)
    db.execute(
        "UPDATE used_input SET outcome=?, value='' WHERE account_id=? AND input_hash=?",
        (outcome, *key),
    )
    if not (accepted or spent):
        return
    db.execute(
        "UPDATE evidence SET consumed_at=?, code=NULL, link=NULL WHERE id=(SELECT evidence_id"
        " FROM used_input WHERE account_id=? AND input_hash=?)",
        (_ts(old.updated_at), *key),
    )
    if accepted and old.input_form in ("link", "pin"):
        db.execute(
            "INSERT INTO account_pref VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE"
            " SET verification_form=excluded.verification_form, updated_at=excluded.updated_at",
            (old.account_id, old.input_form, _ts(old.updated_at)),
        )


def _write_watermark(db: sqlite3.Connection, account_id: str, folder: str, mark: Watermark) -> None:
    db.execute(
        "INSERT INTO watermark VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (account_id, folder) DO UPDATE SET uidvalidity=excluded.uidvalidity,"
        " last_uid=excluded.last_uid, updated_at=excluded.updated_at",
        (account_id, folder, mark.uidvalidity, mark.last_uid, utcnow_text()),
    )


class Store:
    """Thread-safe access to the state database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create state directory {path.parent}: {exc}") from exc

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"state database {self.path} has schema {version}, newer than this "
                f"otp-bot knows ({len(MIGRATIONS)}); upgrade otp-bot"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={target}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable write (BEGIN IMMEDIATE ... COMMIT)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"state database write failed: {exc}") from exc

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state database read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- mailbox watermark ----------------------------------------------------

    def watermark(self, account_id: str, folder: str) -> Watermark | None:
        rows = self.query(
            "SELECT uidvalidity, last_uid FROM watermark WHERE account_id=? AND folder=?",
            (account_id, folder),
        )
        return Watermark(rows[0]["uidvalidity"], rows[0]["last_uid"]) if rows else None

    def set_watermark(self, account_id: str, folder: str, mark: Watermark) -> None:
        with self.transaction() as db:
            _write_watermark(db, account_id, folder, mark)

    def record_handled(
        self, account_id: str, folder: str, mark: Watermark, message_id: str | None
    ) -> None:
        """One message was handed off: its Message-ID and the new watermark, atomically."""
        with self.transaction() as db:
            if message_id:
                db.execute(
                    "INSERT OR IGNORE INTO seen_message VALUES (?, ?, ?)",
                    (account_id, message_id, utcnow_text()),
                )
            _write_watermark(db, account_id, folder, mark)

    def message_seen(self, account_id: str, message_id: str) -> bool:
        rows = self.query(
            "SELECT 1 FROM seen_message WHERE account_id=? AND message_id=?",
            (account_id, message_id),
        )
        return bool(rows)

    def mark_message_seen(self, account_id: str, message_id: str) -> bool:
        """Record a handled Message-ID; False when it was already recorded."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO seen_message VALUES (?, ?, ?)",
                (account_id, message_id, utcnow_text()),
            )
            return cursor.rowcount == 1

    # --- drafts, their history, e-mail evidence, inputs sent (the solver) -----

    _DRAFT_COLUMNS = (
        "account_id, draft_id, state, checkpoint, since, job_id, job_state, error, "
        "error_detail, republishes, options, idempotency_key, input_hash, input_form, "
        "created_at, updated_at"
    )

    def load_drafts(
        self, account_id: str, draft_id: str | None = None, *, pending: bool = False
    ) -> list[Draft]:
        """The account's drafts in queue order (or the one ``draft_id``; ``pending``:
        only those not yet published or failed)."""
        sql = f"SELECT {self._DRAFT_COLUMNS} FROM draft WHERE account_id=?"  # noqa: S608 constant
        params: tuple[object, ...] = (account_id,)
        if draft_id is not None:
            sql, params = sql + " AND draft_id=?", (account_id, draft_id)
        if pending:
            sql += " AND state NOT IN ('published', 'failed')"
        return [_draft(row) for row in self.query(sql + " ORDER BY rowid", params)]

    def insert_draft(self, draft: Draft) -> Draft:
        """Add a new draft; an existing one with that id is returned unchanged."""
        with self.transaction() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO draft ({self._DRAFT_COLUMNS}) "  # noqa: S608 constant
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _draft_values(draft),
            )
            if cursor.rowcount == 1:
                _add_event(db, draft, "added", None, "added to the queue")
        return self.load_drafts(draft.account_id, draft.draft_id)[0]

    def save_transition(
        self,
        old: Draft,
        new: Draft,
        event: Event,
        *,
        use: Candidate | None = None,
        accepted: bool = False,
        spent: bool = False,
    ) -> None:
        """Commit one transition, with its history line, atomically.

        ``use``: the input ``new`` submits, recorded as used in the same
        transaction. ``accepted``: ``old``'s input passed, so its e-mail is
        consumed and (for an e-mail verification) its form remembered.
        ``spent``: the e-mail is dead (its link expired), consumed too.
        """
        values = _draft_values(new)
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE draft SET state=?, checkpoint=?, since=?, job_id=?, job_state=?, error=?,"
                " error_detail=?, republishes=?, options=?, idempotency_key=?, input_hash=?,"
                " input_form=?, updated_at=? WHERE account_id=? AND draft_id=? AND state=?"
                " AND updated_at=?",
                (
                    *values[2:14],
                    values[15],
                    old.account_id,
                    old.draft_id,
                    old.state.value,
                    _ts(old.updated_at),
                ),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"draft {old.draft_id} changed underneath this transition")
            _add_event(db, new, event_name(event), old.state, event.describe())
            if old.input_hash is not None:
                _settle_input(db, old, event_name(event), accepted=accepted, spent=spent)
            if use is not None:
                # A row for the same value can only be one older than the
                # solver's memory of used inputs (a 6-digit code recurring).
                db.execute(
                    "INSERT OR REPLACE INTO used_input VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (
                        new.account_id,
                        use.hash,
                        use.value,
                        use.form,
                        new.draft_id,
                        use.evidence_id,
                        _ts(new.updated_at),
                    ),
                )

    def draft_history(self, account_id: str, draft_id: str) -> list[dict[str, str | None]]:
        """The draft's readable event log, oldest first (no codes or links)."""
        rows = self.query(
            "SELECT at, event, from_state, to_state, detail FROM draft_event"
            " WHERE account_id=? AND draft_id=? ORDER BY id",
            (account_id, draft_id),
        )
        return [dict(row) for row in rows]

    def add_evidence(self, account_id: str, evidence: StoredEvidence, now: datetime) -> int | None:
        """Keep a trusted e-mail's code/link; None when its Message-ID is known."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO evidence (account_id, message_id, uidvalidity, uid,"
                " received_at, code, link, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account_id,
                    evidence.message_id,
                    evidence.uidvalidity,
                    evidence.uid,
                    _ts(evidence.received_at),
                    evidence.code,
                    evidence.link,
                    _ts(now),
                ),
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def fresh_evidence(self, account_id: str, start: datetime) -> list[StoredEvidence]:
        """Unconsumed evidence received at or after ``start``."""
        rows = self.query(
            "SELECT id, received_at, code, link, message_id, uidvalidity, uid FROM evidence"
            " WHERE account_id=? AND consumed_at IS NULL AND received_at>=? ORDER BY id",
            (account_id, _ts(start)),
        )
        return [_evidence(row) for row in rows]

    def used_inputs(self, account_id: str, hashes: Iterable[str], since: datetime) -> set[str]:
        """Which of these input hashes were sent for the account at or after ``since``."""
        wanted = list(dict.fromkeys(hashes))
        used: set[str] = set()
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                "SELECT input_hash FROM used_input WHERE account_id=? AND used_at>=?"  # noqa: S608 placeholders only
                f" AND input_hash IN ({marks})",
                (account_id, _ts(since), *chunk),
            )
            used.update(row["input_hash"] for row in rows)
        return used

    def forget_evidence(self, account_id: str, before: datetime) -> int:
        """Drop the codes and links of e-mails received before ``before``; how many."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE evidence SET code=NULL, link=NULL WHERE account_id=? AND received_at<?"
                " AND (code IS NOT NULL OR link IS NOT NULL)",
                (account_id, _ts(before)),
            )
            return cursor.rowcount

    def input_value(self, account_id: str, input_hash: str) -> str | None:
        """The exact input sent under this hash (to re-send it after a restart)."""
        rows = self.query(
            "SELECT value FROM used_input WHERE account_id=? AND input_hash=?",
            (account_id, input_hash),
        )
        return str(rows[0]["value"]) if rows and rows[0]["value"] else None

    def evidence_of_input(self, account_id: str, input_hash: str) -> StoredEvidence | None:
        rows = self.query(
            "SELECT e.id, e.received_at, e.code, e.link, e.message_id, e.uidvalidity, e.uid"
            " FROM used_input u JOIN evidence e ON e.id=u.evidence_id"
            " WHERE u.account_id=? AND u.input_hash=?",
            (account_id, input_hash),
        )
        return _evidence(rows[0]) if rows else None

    def verification_form(self, account_id: str) -> str | None:
        """The EMAIL_VERIFICATION form this account last had accepted."""
        rows = self.query(
            "SELECT verification_form FROM account_pref WHERE account_id=?", (account_id,)
        )
        return rows[0]["verification_form"] if rows else None
