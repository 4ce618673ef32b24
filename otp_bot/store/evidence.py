"""The solver's evidence tables: what trusted e-mails offered, and which inputs were sent.

A view over ``Store`` like ``otp_bot.store.drafts``. A code or link is kept only while
it may still be used: an answered input keeps only its hash, a consumed
e-mail loses its code and link, and ``forget_evidence`` drops old ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from otp_bot.solve.match import StoredEvidence
from otp_bot.store.db import Store
from otp_bot.store.schema import sql_time
from otp_bot.vocabulary import VERIFICATION_FORMS, InputForm

if TYPE_CHECKING:
    import sqlite3

# Read for each draft; an account's e-mail rows are kept for ever (without their
# codes), so each has a partial index holding only the rows it reads (schema 5).
# SQLite uses a partial index only when the query repeats its WHERE term: keep
# "consumed_at IS NOT NULL" and "(code IS NOT NULL OR link IS NOT NULL)" as they are.
NEWEST_CONSUMED = (
    "SELECT MAX(received_at) AS newest FROM evidence WHERE account_id=? AND consumed_at IS NOT NULL"
)
FORGET = (
    "UPDATE evidence SET code=NULL, link=NULL WHERE account_id=? AND received_at<?"
    " AND (code IS NOT NULL OR link IS NOT NULL)"
)


class EvidenceStore:
    """One store's e-mail evidence, used inputs and remembered forms (all accounts)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add_evidence(self, account_id: str, evidence: StoredEvidence, now: datetime) -> int | None:
        """Keep a trusted e-mail's code/link; None when its Message-ID is known."""
        with self._store.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO evidence (account_id, message_id, uidvalidity, uid,"
                " received_at, code, link, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account_id,
                    evidence.message_id,
                    evidence.uidvalidity,
                    evidence.uid,
                    sql_time(evidence.received_at),
                    evidence.code,
                    evidence.link,
                    sql_time(now),
                ),
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def fresh_evidence(self, account_id: str, start: datetime) -> list[StoredEvidence]:
        """Unconsumed evidence received at or after ``start``."""
        rows = self._store.query(
            "SELECT id, received_at, code, link, message_id, uidvalidity, uid FROM evidence"
            " WHERE account_id=? AND consumed_at IS NULL AND received_at>=? ORDER BY id",
            (account_id, sql_time(start)),
        )
        return [_evidence(row) for row in rows]

    def newest_consumed(self, account_id: str) -> datetime | None:
        """When the newest e-mail the account used up (accepted or spent) was received."""
        rows = self._store.query(NEWEST_CONSUMED, (account_id,))
        newest = rows[0]["newest"] if rows else None
        return datetime.fromisoformat(newest) if newest else None

    def used_inputs(self, account_id: str, hashes: Iterable[str], since: datetime) -> set[str]:
        """Which of these input hashes were sent for the account at or after ``since``."""
        wanted = list(dict.fromkeys(hashes))
        used: set[str] = set()
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._store.query(
                "SELECT input_hash FROM used_input WHERE account_id=? AND used_at>=?"  # noqa: S608 placeholders only
                f" AND input_hash IN ({marks})",
                (account_id, sql_time(since), *chunk),
            )
            used.update(row["input_hash"] for row in rows)
        return used

    def forget_evidence(self, account_id: str, before: datetime) -> int:
        """Drop the codes and links of e-mails received before ``before``; how many."""
        with self._store.transaction() as db:
            cursor = db.execute(FORGET, (account_id, sql_time(before)))
            return cursor.rowcount

    def input_value(self, account_id: str, input_hash: str) -> str | None:
        """The exact input sent under this hash (to re-send it after a restart)."""
        rows = self._store.query(
            "SELECT value FROM used_input WHERE account_id=? AND input_hash=?",
            (account_id, input_hash),
        )
        return str(rows[0]["value"]) if rows and rows[0]["value"] else None

    def evidence_of_input(self, account_id: str, input_hash: str) -> StoredEvidence | None:
        rows = self._store.query(
            "SELECT e.id, e.received_at, e.code, e.link, e.message_id, e.uidvalidity, e.uid"
            " FROM used_input u JOIN evidence e ON e.id=u.evidence_id"
            " WHERE u.account_id=? AND u.input_hash=?",
            (account_id, input_hash),
        )
        return _evidence(rows[0]) if rows else None

    def stored_at(self, account_id: str, evidence_id: int) -> datetime | None:
        """When this evidence's e-mail was seen and stored (for e-mail -> submit latency)."""
        rows = self._store.query(
            "SELECT stored_at FROM evidence WHERE account_id=? AND id=?", (account_id, evidence_id)
        )
        return datetime.fromisoformat(rows[0]["stored_at"]) if rows else None

    def verification_form(self, account_id: str) -> InputForm | None:
        """The EMAIL_VERIFICATION form this account last had accepted."""
        rows = self._store.query(
            "SELECT verification_form FROM account_pref WHERE account_id=?", (account_id,)
        )
        form = rows[0]["verification_form"] if rows else None
        return InputForm(form) if form in VERIFICATION_FORMS else None


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
