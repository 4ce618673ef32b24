"""The state database's schema: its migrations and its one timestamp format.

``MIGRATIONS[n]`` brings a database from schema version n (``PRAGMA
user_version``) to n+1; ``Store`` applies the missing ones, each in one
transaction, when it opens the file. Statements are separated by ``;``.

Every timestamp is written by ``sql_time``: fixed-width UTC text with
microseconds, so SQL compares and sorts timestamps correctly as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime


def sql_time(value: datetime) -> str:
    """Fixed-width UTC text, so SQL compares timestamps as strings correctly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


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
    # 2 -> 3: the history is the event table integrators read (webhook, GET /events):
    # each row carries the draft's job and error; cursors say what was delivered.
    """
    ALTER TABLE draft_event ADD COLUMN job_id TEXT;
    ALTER TABLE draft_event ADD COLUMN error TEXT;
    CREATE TABLE event_cursor (
        name       TEXT PRIMARY KEY,
        last_id    INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX draft_by_updated ON draft (updated_at);
    """,
    # 3 -> 4: one timestamp format. Versions up to 3 wrote the watermark's and
    # the seen Message-IDs' times with isoformat(), which leaves the fraction out
    # when it is zero ("...:05+00:00", 25 characters); such a time compared as
    # earlier than the same instant in sql_time's form. Give them sql_time's form.
    """
    UPDATE watermark SET updated_at =
        substr(updated_at, 1, 19) || '.000000' || substr(updated_at, 20)
        WHERE length(updated_at) = 25;
    UPDATE seen_message SET seen_at =
        substr(seen_at, 1, 19) || '.000000' || substr(seen_at, 20)
        WHERE length(seen_at) = 25;
    """,
    # 4 -> 5: an e-mail's row stays after its code and link are forgotten, one per
    # trusted e-mail for ever; the two reads each draft makes (the newest e-mail used
    # up, the codes due to be forgotten) walked all of the account's rows. Each gets
    # a partial index holding only the rows it reads.
    """
    CREATE INDEX evidence_consumed ON evidence (account_id, received_at)
        WHERE consumed_at IS NOT NULL;
    CREATE INDEX evidence_held ON evidence (account_id, received_at)
        WHERE code IS NOT NULL OR link IS NOT NULL;
    """,
]
