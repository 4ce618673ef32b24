"""The ledger's drafts per state and its pending drafts: read from the store once, then
kept in step by every add and move, so that asking after each move costs nothing per
draft kept and no read of the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from otp_bot.config import Settings
from otp_bot.daemon.operations import Operations
from otp_bot.postpress.client import PostpressClient, RetryPolicy
from otp_bot.solve import drafts as d
from otp_bot.solve.drafts import TERMINAL
from otp_bot.solve.hooks import NO_HOOKS
from otp_bot.solve.ledger import Ledger
from otp_bot.solve.worker import AccountWorker
from otp_bot.store.db import Store
from otp_bot.store.drafts import DraftStore
from otp_bot.store.events import EventStore
from tests.mailbox_helpers import until

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
ACCOUNT = "acc"


def test_counts_follow_adds_moves_and_a_recount_after_the_retention(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    records = DraftStore(store)
    clock = {"now": T0}
    ledger = Ledger(records, ACCOUNT, lambda: clock["now"], NO_HOOKS)

    def agree() -> dict[str, int]:
        assert ledger.counts() == records.count_states(ACCOUNT)
        assert ledger.drafts(pending=True) == records.load_drafts(ACCOUNT, pending=True)
        return ledger.counts()

    # Kept from before this ledger (an earlier run of the daemon): counted at the first ask.
    old = records.insert_draft(d.new_draft(ACCOUNT, "old", T0))
    records.save_transition(old, d.advance(old, d.Fail("x"), T0), d.Fail("x"))
    records.insert_draft(d.new_draft("other", "elsewhere", T0))
    assert agree() == {"failed": 1}

    fresh = d.new_draft(ACCOUNT, "D1", T0)
    assert ledger.insert(fresh) == fresh
    assert agree() == {"failed": 1, "queued": 1}
    again = ledger.insert(d.new_draft(ACCOUNT, "D1", T0 + timedelta(seconds=5)))
    assert again == fresh  # already there: returned as stored, counted once
    assert agree() == {"failed": 1, "queued": 1}

    clock["now"] = T0 + timedelta(seconds=1)
    moving = ledger.commit(fresh, d.StartPublish("k1"))
    assert agree() == {"failed": 1, "publishing": 1}
    ledger.commit(moving, d.Fail("network_error"))
    assert agree() == {"failed": 2}
    second = ledger.insert(d.new_draft(ACCOUNT, "D2", T0))
    assert agree() == {"failed": 2, "queued": 1}
    ledger.commit(ledger.draft("old"), d.Retry())  # type: ignore[arg-type]
    # Queued again, the old draft keeps its place: before D2, which came later.
    assert [x.draft_id for x in ledger.drafts(pending=True)] == ["old", "D2"]
    assert agree() == {"failed": 1, "queued": 2}
    ledger.commit(second, d.Cancel())
    assert agree() == {"failed": 1, "queued": 1, "cancelled": 1}

    # The retention deletes behind the ledger's back: it is not asked again until told.
    pruned, _events = EventStore(store).prune(
        ACCOUNT, {s.value for s in TERMINAL}, T0 + timedelta(days=1)
    )
    assert pruned == 2
    assert ledger.counts() == {"failed": 1, "queued": 1, "cancelled": 1}
    ledger.recount()
    assert agree() == {"queued": 1}
    store.close()


async def test_the_daily_retention_makes_the_account_count_afresh(tmp_path: Path) -> None:
    """The account's retention duty prunes a draft finished long ago: the counts the
    daemon reports (taken before the prune) lose it too."""
    settings = Settings(
        account_id=ACCOUNT,
        api_key="pp_test_counts_key",
        api_base_url="http://127.0.0.1:9/v1",  # never called: no draft runs
        imap_host="127.0.0.1",
        imap_user="bot@example.test",
        imap_password="unused",
        imap_security="none",
        state_dir=tmp_path,
        retention_days=30,
    )
    store = Store(settings.state_db)
    records = DraftStore(store)
    long_ago = datetime.now(UTC) - timedelta(days=100)
    old = records.insert_draft(d.new_draft(ACCOUNT, "old", long_ago))
    records.save_transition(old, d.advance(old, d.Fail("x"), long_ago), d.Fail("x"))
    records.insert_draft(d.new_draft(ACCOUNT, "new", datetime.now(UTC)))
    client = PostpressClient(
        base_url="http://127.0.0.1:9/v1",
        api_key="pp_test_counts_key",
        account_id=ACCOUNT,
        retry=RetryPolicy(attempts=1, max_time=1, wait=False),
    )
    worker = AccountWorker(settings, store, client)
    assert worker.counts() == {"failed": 1, "queued": 1}
    stop = asyncio.Event()
    [(name, prune)] = Operations(settings, worker).duties(stop)
    assert name == "retention"
    task = asyncio.create_task(prune)
    try:
        # The prune runs at once, then daily, and announces nothing: wait for its write.
        await until(lambda: records.count_states(ACCOUNT) == {"queued": 1})
        assert worker.counts() == {"queued": 1}
    finally:
        stop.set()
        await task
        await client.close()
        store.close()
