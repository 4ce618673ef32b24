"""The durability barrier: commits without fsync, flushed in groups before side effects."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from otp_bot.errors import StoreError
from otp_bot.store.db import Store, Watermark


def test_commits_are_not_flushed_one_by_one(tmp_path: Path) -> None:
    """synchronous=NORMAL in WAL mode: a commit does not wait for the disk."""
    store = Store(tmp_path / "db.sqlite3")
    assert store.query("PRAGMA synchronous")[0][0] == 1  # NORMAL
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    store.close()


async def test_concurrent_callers_share_flushes(tmp_path: Path) -> None:
    """Fifty callers waiting at once are served by far fewer fsyncs, none on the loop thread."""
    store = Store(tmp_path / "db.sqlite3")

    async def write_then_wait(i: int) -> None:
        store.set_watermark(f"acc{i}", "INBOX", Watermark(1, i))
        await store.durable()

    await asyncio.gather(*(write_then_wait(i) for i in range(50)))
    assert 1 <= store.sync.flushes < 50
    assert "wal-sync" in {thread.name for thread in threading.enumerate()}
    before = store.sync.flushes
    await store.durable()  # nothing new committed: no flush
    assert store.sync.flushes == before
    store.close()


async def test_durable_after_close_is_an_error(tmp_path: Path) -> None:
    """A closed store refuses to promise durability instead of hanging."""
    store = Store(tmp_path / "db.sqlite3")
    store.set_watermark("acc", "INBOX", Watermark(1, 1))
    store.close()
    with pytest.raises(StoreError):
        await store.durable()


def test_commits_survive_a_killed_process(tmp_path: Path) -> None:
    """A process killed right after its commits (no flush, no close) loses none of them."""
    path = tmp_path / "db.sqlite3"
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from otp_bot.store.db import Store, Watermark\n"
        "store = Store(Path(sys.argv[1]))\n"
        "for uid in range(1, 201):\n"
        "    store.set_watermark('acc', 'INBOX', Watermark(7, uid))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], timeout=60, check=False)
    assert done.returncode == -9
    assert os.path.exists(f"{path}-wal")  # the commits are in the log, never checkpointed
    assert Store(path).watermark("acc", "INBOX") == Watermark(7, 200)
