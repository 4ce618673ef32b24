"""Descriptors of a watching mailbox: its socket only, no selector or wake-up fd per wait."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

from tests.dovecot import Dovecot
from tests.mailbox_helpers import Recorder, running, settings_for


def kinds() -> Counter[str]:
    """This process's descriptors by kind (eventpoll, eventfd, pipe, socket, file)."""
    found: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        found[target.split(":", 1)[0] if ":" in target else "file"] += 1
        if target.startswith("anon_inode:"):
            found[target] += 1
    return found


async def test_idle_wait_holds_no_selector(dovecot: Dovecot, tmp_path: Path) -> None:
    """While the mailbox waits in IDLE (short intervals: many waits), the process holds
    exactly one epoll descriptor (the event loop's), one socket more and no eventfd or pipe."""
    before = kinds()
    settings = settings_for(dovecot, tmp_path, imap_idle_interval=0.2)
    async with running(settings, Recorder()) as watcher:
        for _ in range(10):  # sample across several IDLE re-issues
            await asyncio.sleep(0.1)  # sampling interval, not synchronisation
            now = kinds()
            assert now["anon_inode:[eventpoll]"] == before["anon_inode:[eventpoll]"]
            assert now["anon_inode:[eventfd]"] == before["anon_inode:[eventfd]"]
            assert now["socket"] == before["socket"] + 1
            assert now["pipe"] == before["pipe"]
        assert watcher.watching.is_set()
