"""The draft event table as a feed: what integrators read, what was delivered, retention.

Every transition's history line (``draft_event``, written in the same
transaction as the transition) is one event. Its ``id`` grows with every row
and is never reused (``AUTOINCREMENT``), so a reader keeps its place with one
number: the webhook's outbox keeps it in ``event_cursor`` (delivered at
least once: the cursor moves only after the receiver said 2xx), a
``GET /events`` client keeps it in ``Last-Event-ID``.

Retention drops finished drafts (and their events) once they are older than
``OTP_BOT_RETENTION_DAYS``; until then their history stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from otp_bot.store.db import Store
from otp_bot.store.schema import sql_time

# One read of the feed returns at most this many events (a reader asks again).
PAGE = 200
_EVENT_COLUMNS = "id, account_id, draft_id, at, event, from_state, to_state, detail, job_id, error"


class EventStore:
    """One store's draft events, the readers' cursors and the retention of finished drafts."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def events_after(
        self, after: int, account_ids: Sequence[str] | None = None, limit: int = PAGE
    ) -> list[dict[str, Any]]:
        """Events with an id above ``after``, oldest first (of these accounts, if given)."""
        sql = f"SELECT {_EVENT_COLUMNS} FROM draft_event WHERE id>?"  # noqa: S608 constant
        params: list[object] = [after]
        if account_ids is not None:
            sql += f" AND account_id IN ({', '.join('?' * len(account_ids))})"
            params.extend(account_ids)
        rows = self._store.query(sql + " ORDER BY id LIMIT ?", (*params, limit))
        return [dict(row) for row in rows]

    def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        rows = self._store.query("SELECT COALESCE(MAX(id), 0) AS last FROM draft_event")
        return int(rows[0]["last"])

    def cursor(self, name: str) -> int | None:
        rows = self._store.query("SELECT last_id FROM event_cursor WHERE name=?", (name,))
        return int(rows[0]["last_id"]) if rows else None

    def set_cursor(self, name: str, last_id: int, now: datetime) -> None:
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO event_cursor VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET last_id=excluded.last_id, updated_at=excluded.updated_at",
                (name, last_id, sql_time(now)),
            )

    def prune(self, account_id: str, finished: Iterable[str], before: datetime) -> tuple[int, int]:
        """Drop the account's drafts in a ``finished`` state last changed before ``before``,
        and their events; (drafts, events) dropped."""
        states = sorted(finished)
        marks = ", ".join("?" * len(states))
        old = (account_id, *states, sql_time(before))
        with self._store.transaction() as db:
            # Only placeholders are formatted into the statements.
            where = f"account_id=? AND state IN ({marks}) AND updated_at<?"
            gone = f"SELECT account_id, draft_id FROM draft WHERE {where}"  # noqa: S608
            events = db.execute(
                f"DELETE FROM draft_event WHERE (account_id, draft_id) IN ({gone})",  # noqa: S608
                old,
            ).rowcount
            drafts = db.execute(f"DELETE FROM draft WHERE {where}", old).rowcount  # noqa: S608
        return drafts, events

    async def durable(self) -> None:
        """Return once every committed event is on disk (before telling anyone about it)."""
        await self._store.durable()
