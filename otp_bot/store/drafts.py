"""The worker's draft tables: drafts and their history (``otp_bot.store.evidence``: the rest).

A view over ``Store`` (which owns the connection, the schema migrations and
the translation of sqlite's errors into ``StoreError``): every write here is
one ``Store.transaction()``, committed before the caller acts on it.
Timestamps are stored as fixed-width UTC text so SQL compares them correctly.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING

from otp_bot.errors import StoreError
from otp_bot.solve.drafts import TERMINAL, Draft, Event, State, event_name
from otp_bot.solve.match import Candidate
from otp_bot.store.db import Store
from otp_bot.store.schema import sql_time
from otp_bot.vocabulary import VERIFICATION_FORMS, CheckpointType, InputForm

if TYPE_CHECKING:
    import sqlite3

_COLUMNS = (
    "account_id, draft_id, state, checkpoint, since, job_id, job_state, error, "
    "error_detail, republishes, options, idempotency_key, input_hash, input_form, "
    "created_at, updated_at"
)

# The states of drafts under way (constants of ``State``), for "state IN (...)": an index
# search reading only those, where "NOT IN (terminal)" read every draft the account keeps.
_PENDING = ", ".join(f"'{state.value}'" for state in State if state not in TERMINAL)


class DraftStore:
    """One store's drafts and their history (all accounts; each call names one)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load_drafts(
        self, account_id: str, draft_id: str | None = None, *, pending: bool = False
    ) -> list[Draft]:
        """The account's drafts in queue order (or the one ``draft_id``; ``pending``:
        only those not yet published or failed)."""
        sql = f"SELECT {_COLUMNS} FROM draft WHERE account_id=?"  # noqa: S608 constant
        params: tuple[object, ...] = (account_id,)
        if draft_id is not None:
            sql, params = sql + " AND draft_id=?", (account_id, draft_id)
        if pending:
            sql += f" AND state IN ({_PENDING})"
        return [_draft(row) for row in self._store.query(sql + " ORDER BY rowid", params)]

    def count_states(self, account_id: str) -> dict[str, int]:
        """The account's drafts per state (on the index; ``Ledger.counts`` asks once)."""
        sql = "SELECT state, COUNT(*) AS n FROM draft WHERE account_id=? GROUP BY state"
        return {row["state"]: row["n"] for row in self._store.query(sql, (account_id,))}

    def find_drafts(
        self,
        account_id: str,
        *,
        states: Collection[str] | None = None,
        since: datetime | None = None,
        error: str | None = None,
    ) -> list[Draft]:
        """The account's drafts in queue order, filtered in SQL: in one of ``states``,
        changed at or after ``since``, failed with ``error``."""
        sql = f"SELECT {_COLUMNS} FROM draft WHERE account_id=?"  # noqa: S608 constant
        params: list[object] = [account_id]
        if states is not None:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params.extend(sorted(states))
        if since is not None:
            sql, params = sql + " AND updated_at>=?", [*params, sql_time(since)]
        if error is not None:
            sql, params = sql + " AND error=?", [*params, error]
        return [_draft(row) for row in self._store.query(sql + " ORDER BY rowid", tuple(params))]

    def insert_draft(self, draft: Draft) -> Draft:
        """Add a new draft; an existing one with that id is returned unchanged."""
        with self._store.transaction() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO draft ({_COLUMNS}) "  # noqa: S608 constant
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
        with self._store.transaction() as db:
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
                    sql_time(old.updated_at),
                ),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"draft {old.draft_id} changed underneath this transition")
            _add_event(db, new, event_name(event), old.state, event.describe())
            if old.input_hash is not None and new.input_hash != old.input_hash:
                # (A draft that keeps its input, to re-send it, has no answer yet.)
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
                        sql_time(new.updated_at),
                    ),
                )

    def draft_history(self, account_id: str, draft_id: str) -> list[dict[str, str | None]]:
        """The draft's readable event log, oldest first (no codes or links)."""
        rows = self._store.query(
            "SELECT at, event, from_state, to_state, detail FROM draft_event"
            " WHERE account_id=? AND draft_id=? ORDER BY id",
            (account_id, draft_id),
        )
        return [dict(row) for row in rows]


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _draft_values(draft: Draft) -> tuple[object, ...]:
    return (
        draft.account_id,
        draft.draft_id,
        draft.state.value,
        draft.checkpoint,
        sql_time(draft.since) if draft.since else None,
        draft.job_id,
        draft.job_state,
        draft.error,
        draft.error_detail,
        draft.republishes,
        json.dumps(dict(draft.options), sort_keys=True),
        draft.idempotency_key,
        draft.input_hash,
        draft.input_form,
        sql_time(draft.created_at),
        sql_time(draft.updated_at),
    )


def _draft(row: sqlite3.Row) -> Draft:
    return Draft(
        account_id=row["account_id"],
        draft_id=row["draft_id"],
        state=State(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        options=json.loads(row["options"]),
        checkpoint=CheckpointType(row["checkpoint"]) if row["checkpoint"] else None,
        since=_dt(row["since"]),
        job_id=row["job_id"],
        job_state=row["job_state"],
        error=row["error"],
        error_detail=row["error_detail"],
        republishes=row["republishes"],
        idempotency_key=row["idempotency_key"],
        input_hash=row["input_hash"],
        input_form=InputForm(row["input_form"]) if row["input_form"] else None,
    )


def _add_event(
    db: sqlite3.Connection, draft: Draft, event: str, before: State | None, detail: str
) -> None:
    db.execute(
        "INSERT INTO draft_event (account_id, draft_id, at, event, from_state, to_state, detail,"
        " job_id, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            draft.account_id,
            draft.draft_id,
            sql_time(draft.updated_at),
            event,
            before.value if before else None,
            draft.state.value,
            detail,
            draft.job_id,
            draft.error,
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
        (sql_time(old.updated_at), *key),
    )
    if accepted and old.input_form in VERIFICATION_FORMS:
        db.execute(
            "INSERT INTO account_pref VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE"
            " SET verification_form=excluded.verification_form, updated_at=excluded.updated_at",
            (old.account_id, old.input_form, sql_time(old.updated_at)),
        )
