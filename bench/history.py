"""The state database reads for a draft, with 0, 1,000 and 10,000 drafts and e-mails kept.

An account keeps its finished drafts for OTP_BOT_RETENTION_DAYS (90 by
default) and a row for every trusted e-mail for ever (its code and link are
forgotten after a day): a busy account keeps thousands. None of that may make
a new draft cost more. Per draft, the daemon counts the account's drafts per
state after every move (health, STATUS=, metrics, whether a code is awaited),
loads the drafts still under way at each step, forgets old codes when a draft
starts and looks up the newest e-mail used up while it waits for a code.

For each H, a fresh database holds H published drafts of one account (and
three queued ones) and H e-mails used up two days ago; timed, best of
several rounds of 200, one "draft" being: the counts, three loads of the
pending drafts, one forget, one newest-used look-up.

- now: as the daemon does it (``Ledger.counts``, kept in step with the moves
  after one count; ``Ledger.drafts(pending=True)``, a search by state on the
  index; the two e-mail reads on their partial indexes, schema 5);
- before: as it did until this change (every draft loaded to count them;
  ``state NOT IN (finished states)``; the e-mail reads without those
  indexes), on a copy of the same database with the indexes dropped.

    .venv/bin/python bench/history.py

Goal: "now" at H=10,000 within 2x H=0 (the cost follows the drafts and
e-mails under way, not those kept). Prints one table and the ratios,
measured in this run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otp_bot.solve.drafts import TERMINAL, Draft, State  # noqa: E402 - after the path set-up
from otp_bot.solve.hooks import NO_HOOKS  # noqa: E402
from otp_bot.solve.ledger import Ledger  # noqa: E402
from otp_bot.store.db import Store  # noqa: E402
from otp_bot.store.drafts import _COLUMNS, DraftStore  # noqa: E402
from otp_bot.store.evidence import EvidenceStore  # noqa: E402
from otp_bot.store.schema import sql_time  # noqa: E402

SIZES = (0, 1_000, 10_000)
ROUNDS, CALLS = 7, 200
ACCOUNT = "acc_history"
FINISHED = ", ".join(f"'{state.value}'" for state in sorted(TERMINAL))


def filled(path: Path, kept: int, *, indexed: bool) -> tuple[Store, DraftStore]:
    store = Store(path)
    records = DraftStore(store)
    now = datetime.now(UTC)
    used = sql_time(now - timedelta(days=2))
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO evidence (account_id, message_id, uidvalidity, uid, received_at,"
            " code, link, stored_at, consumed_at) VALUES (?, ?, 1, ?, ?, NULL, NULL, ?, ?)",
            [(ACCOUNT, f"<{n}@linkedin.com>", n, used, used, used) for n in range(kept)],
        )
        if not indexed:
            db.execute("DROP INDEX evidence_consumed")
            db.execute("DROP INDEX evidence_held")
    options = {"title": "Senior engineer", "location": "Remote", "mode": "FREE"}
    for index in range(kept):
        records.insert_draft(
            Draft(ACCOUNT, f"old-{index}", State.PUBLISHED, now, now, options, job_id=str(index))
        )
    for index in range(3):
        records.insert_draft(Draft(ACCOUNT, f"live-{index}", State.QUEUED, now, now, options))
    return store, records


def e_mail_reads(evidence: EvidenceStore) -> None:
    evidence.forget_evidence(ACCOUNT, datetime.now(UTC) - timedelta(days=1))
    evidence.newest_consumed(ACCOUNT)


def now_per_draft(ledger: Ledger, evidence: EvidenceStore) -> None:
    ledger.counts()
    for _ in range(3):
        ledger.drafts(pending=True)
    e_mail_reads(evidence)


def before_per_draft(store: Store, records: DraftStore) -> None:
    counts: dict[str, int] = {}
    for draft in records.load_drafts(ACCOUNT):
        counts[draft.state.value] = counts.get(draft.state.value, 0) + 1
    sql = f"SELECT {_COLUMNS} FROM draft WHERE account_id=? AND state NOT IN ({FINISHED})"  # noqa: S608
    for _ in range(3):
        store.query(sql + " ORDER BY rowid", (ACCOUNT,))
    e_mail_reads(EvidenceStore(store))


def best_us(work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            work()
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best * 1e6


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kept in SIZES:
            store, records = filled(Path(tmp) / f"now-{kept}.sqlite3", kept, indexed=True)
            try:
                ledger = Ledger(records, ACCOUNT, lambda: datetime.now(UTC), NO_HOOKS)
                now = best_us(partial(now_per_draft, ledger, EvidenceStore(store)))
            finally:
                store.close()
            store, records = filled(Path(tmp) / f"before-{kept}.sqlite3", kept, indexed=False)
            try:
                before = best_us(partial(before_per_draft, store, records))
            finally:
                store.close()
            rows.append((kept, now, before))
    print("drafts and e-mails kept | now, per draft | before, per draft")
    for kept, now, before in rows:
        print(f"{kept:>23,} | {now:11.1f} us | {before:13.1f} us")
    base_now, base_before = rows[0][1], rows[0][2]
    print("ratios to 0 kept (same run):")
    for kept, now, before in rows[1:]:
        print(f"  {kept:,}: now x{now / base_now:.2f}, before x{before / base_before:.2f}")
    verdict = rows[-1][1] / base_now <= 2.0
    print(f"goal (now at {SIZES[-1]:,} within 2x of 0): {'met' if verdict else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
