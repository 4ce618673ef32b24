"""The state database reads a draft's move costs, with 0, 1,000 and 10,000 drafts kept.

An account keeps its finished drafts for OTP_BOT_RETENTION_DAYS (90 by
default): a busy one keeps thousands. After every move of a draft the daemon
counts the account's drafts per state (health, STATUS=, metrics, and whether
a code is awaited) and its steps load the drafts still under way. Neither
may cost more because old drafts are kept.

For each H, a fresh database holds H published drafts of one account (and
three queued ones); timed, best of several rounds of 200:

- now: what the daemon reads per move (``Ledger.counts``, kept in step with
  the moves after one count, and ``Ledger.drafts(pending=True)`` three
  times: the step, the current draft, the held one);
- before: what it ran until this change (every draft loaded to count them;
  ``state NOT IN (finished states)`` for the pending ones).

    .venv/bin/python bench/history.py

Goal: "now" at H=10,000 within 2x H=0 (the cost follows the drafts under
way, not those kept). Prints one table and the ratios, measured in this run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otp_bot.solve.drafts import TERMINAL, Draft, State  # noqa: E402 - after the path set-up
from otp_bot.solve.hooks import NO_HOOKS  # noqa: E402
from otp_bot.solve.ledger import Ledger  # noqa: E402
from otp_bot.store.db import Store  # noqa: E402
from otp_bot.store.drafts import _COLUMNS, DraftStore  # noqa: E402

SIZES = (0, 1_000, 10_000)
ROUNDS, CALLS = 7, 200
ACCOUNT = "acc_history"
FINISHED = ", ".join(f"'{state.value}'" for state in sorted(TERMINAL))


def filled(root: Path, kept: int) -> tuple[Store, DraftStore]:
    store = Store(root / f"state-{kept}.sqlite3")
    records = DraftStore(store)
    now = datetime.now(UTC)
    options = {"title": "Senior engineer", "location": "Remote", "mode": "FREE"}
    for index in range(kept):
        records.insert_draft(
            Draft(ACCOUNT, f"old-{index}", State.PUBLISHED, now, now, options, job_id=str(index))
        )
    for index in range(3):
        records.insert_draft(Draft(ACCOUNT, f"live-{index}", State.QUEUED, now, now, options))
    return store, records


def now_per_move(ledger: Ledger) -> None:
    ledger.counts()
    for _ in range(3):
        ledger.drafts(pending=True)


def before_per_move(store: Store, records: DraftStore) -> None:
    counts: dict[str, int] = {}
    for draft in records.load_drafts(ACCOUNT):
        counts[draft.state.value] = counts.get(draft.state.value, 0) + 1
    sql = f"SELECT {_COLUMNS} FROM draft WHERE account_id=? AND state NOT IN ({FINISHED})"  # noqa: S608
    for _ in range(3):
        store.query(sql + " ORDER BY rowid", (ACCOUNT,))


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
            store, records = filled(Path(tmp), kept)
            try:
                ledger = Ledger(records, ACCOUNT, lambda: datetime.now(UTC), NO_HOOKS)
                now = best_us(partial(now_per_move, ledger))
                before = best_us(partial(before_per_move, store, records))
            finally:
                store.close()
            rows.append((kept, now, before))
    print("drafts kept | now, per move | before, per move")
    for kept, now, before in rows:
        print(f"{kept:>11,} | {now:10.1f} us | {before:12.1f} us")
    base_now, base_before = rows[0][1], rows[0][2]
    print("ratios to 0 kept (same run):")
    for kept, now, before in rows[1:]:
        print(f"  {kept:,}: now x{now / base_now:.2f}, before x{before / base_before:.2f}")
    verdict = rows[-1][1] / base_now <= 2.0
    print(f"goal (now at {SIZES[-1]:,} within 2x of 0): {'met' if verdict else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
