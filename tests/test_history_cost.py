"""A draft costs the database the same whatever the account keeps.

An account keeps its finished drafts for OTP_BOT_RETENTION_DAYS and a row for
every trusted e-mail for ever. No read on a draft's way (publish, checkpoint,
e-mail, submit) may walk that history: a general guard for any such read, in
SQLite's own steps (``Store.counted``), not in time. ``bench/history.py``
times the reads known today.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from structlog.testing import capture_logs

from otp_bot.solve.drafts import State
from otp_bot.store.db import Store
from otp_bot.store.schema import sql_time
from tests.mailbox_helpers import until
from tests.test_solver import Harness, make, sim  # noqa: F401 - the fixtures

KEPT = 3_000
# One draft's whole way costs about the same with or without history: the margin is
# for B-tree searches a level deeper, not for anything that grows with KEPT.
FLAT = 1.25


def keep_history(store: Store, account: str, count: int) -> None:
    """``count`` finished drafts and used-up e-mails of the account, two days old."""
    old = sql_time(datetime.now(UTC) - timedelta(days=2))
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO draft (account_id, draft_id, state, republishes, options,"
            " created_at, updated_at) VALUES (?, ?, 'published', 0, '{}', ?, ?)",
            [(account, f"old-{n}", old, old) for n in range(count)],
        )
        db.executemany(
            "INSERT INTO evidence (account_id, message_id, uidvalidity, uid, received_at,"
            " code, link, stored_at, consumed_at) VALUES (?, ?, 1, ?, ?, NULL, NULL, ?, ?)",
            [(account, f"<{n}@linkedin.com>", n, old, old, old) for n in range(count)],
        )


async def one_draft(h: Harness) -> int:
    """The database's work (SQLite steps) for one draft, publish to published, after a
    first draft (the worker's start and its first reads are not a draft's cost)."""
    h.start()
    for draft_id in ("D-first", "D-cost"):
        with h.store.counted() as steps:
            await h.worker.add_draft(draft_id)
            draft = await h.reaches(draft_id, State.PUBLISHED, State.FAILED)
        assert draft.state is State.PUBLISHED
    return steps[0]


async def test_a_draft_costs_the_database_the_same_whatever_the_account_keeps(
    make: Callable[..., Harness],  # noqa: F811 - the fixture
) -> None:
    fresh = await one_draft(make(account="acc_fresh"))
    busy = make(account="acc_busy")
    keep_history(busy.store, "acc_busy", KEPT)
    kept = await one_draft(busy)
    assert fresh > 0
    assert kept <= FLAT * fresh, (fresh, kept)


async def test_the_start_reports_the_drafts_from_the_counts_and_the_pending_ones(
    make: Callable[..., Harness],  # noqa: F811 - the fixture
) -> None:
    """worker_started gives the drafts per state and draft_resumed each draft under way,
    read from the counts and the pending drafts rather than from every draft kept."""
    h = make(account="acc_resume")
    keep_history(h.store, "acc_resume", 5)
    h.auto_mail = False  # the draft stays under way until the test is over
    h.start()
    await h.worker.add_draft("D-live")
    await h.reaches("D-live", State.AWAITING_CODE)
    await h.halt()
    with capture_logs() as logs:
        h.worker = h.new_worker()
        h.start()
        await until(lambda: any(e["event"] == "worker_started" for e in logs))
    resumed = [e for e in logs if e["event"] == "draft_resumed"]
    assert [(e["draft_id"], e["state"]) for e in resumed] == [("D-live", "awaiting_code")]
    [started] = [e for e in logs if e["event"] == "worker_started"]
    assert started["drafts"] == {"published": 5, "awaiting_code": 1}
