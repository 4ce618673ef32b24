"""The state database: SQLite in WAL mode, the only module that imports sqlite3.

One file per state directory, shared by the accounts that point at it (rows
carry ``account_id``). Every write is one committed transaction with
``synchronous=NORMAL``: it survives a crash of the process at once, and is
forced to disk (with every commit before it) by ``await Store.durable()``,
which callers run before each side effect (``store/durable.py``: the argument).
The schema is versioned by ``PRAGMA user_version``; ``MIGRATIONS[n]``
(``store/schema.py``) brings a database from version n to n+1.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from otp_bot.errors import StoreError
from otp_bot.store.durable import WalSync
from otp_bot.store.schema import MIGRATIONS, sql_time

# A busy database (another process holding the write lock) is waited for this
# long before the write fails; writes here take milliseconds.
BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Watermark:
    uidvalidity: int
    last_uid: int


def utcnow_text() -> str:
    return sql_time(datetime.now(UTC))


def _write_watermark(db: sqlite3.Connection, account_id: str, folder: str, mark: Watermark) -> None:
    db.execute(
        "INSERT INTO watermark VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (account_id, folder) DO UPDATE SET uidvalidity=excluded.uidvalidity,"
        " last_uid=excluded.last_uid, updated_at=excluded.updated_at",
        (account_id, folder, mark.uidvalidity, mark.last_uid, utcnow_text()),
    )


# The database holds codes, links and draft options: owner-only, whatever the umask.
PRIVATE_MODE = 0o600


def _owner_only(path: Path) -> None:
    """Create the database file 0600 (SQLite gives its -wal and -shm the same
    mode) and tighten the mode of files an older version left readable."""
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_MODE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o777 != PRIVATE_MODE:
            file.chmod(PRIVATE_MODE)


class Store:
    """Thread-safe access to the state database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.sync = WalSync(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _owner_only(path)
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # Commits are flushed by ``durable()`` before side effects (store/durable.py).
            self._db.execute("PRAGMA synchronous=NORMAL")
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
        """One atomic write (BEGIN IMMEDIATE ... COMMIT), kept across a process crash."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                self.sync.committed()
            except sqlite3.Error as exc:
                raise StoreError(f"state database write failed: {exc}") from exc

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state database read failed: {exc}") from exc

    @contextmanager
    def counted(self) -> Iterator[list[int]]:
        """Count the database's work meanwhile, in SQLite virtual-machine steps (``[0]``
        of the list yielded): what some work costs the database, the same on any
        machine, so a test can hold a cost flat without timing it. Each step calls back
        into Python while it counts: for tests and benches, never the daemon's paths."""
        steps = [0]

        def tick() -> int:
            steps[0] += 1
            return 0  # go on

        with self._lock:
            self._db.set_progress_handler(tick, 1)  # SQLite restarts its count per statement
        try:
            yield steps
        finally:
            with self._lock:
                self._db.set_progress_handler(None, 0)

    async def durable(self) -> None:
        """Return once every write committed so far is on disk (see ``store/durable.py``)."""
        await self.sync.durable()

    def close(self) -> None:
        self.sync.close()
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
        self, account_id: str, folder: str, mark: Watermark, message_ids: Iterable[str]
    ) -> None:
        """Messages were handed off: their Message-IDs and the new watermark, atomically."""
        now = utcnow_text()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO seen_message VALUES (?, ?, ?)",
                [(account_id, message_id, now) for message_id in message_ids],
            )
            _write_watermark(db, account_id, folder, mark)

    def message_seen(self, account_id: str, message_id: str) -> bool:
        rows = self.query(
            "SELECT 1 FROM seen_message WHERE account_id=? AND message_id=?",
            (account_id, message_id),
        )
        return bool(rows)

    def forget_seen_messages(self, account_id: str, before: float) -> int:
        """Drop Message-IDs recorded before the POSIX time ``before``; how many."""
        cutoff = sql_time(datetime.fromtimestamp(before, UTC))
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM seen_message WHERE account_id=? AND seen_at<?", (account_id, cutoff)
            )
            return cursor.rowcount
