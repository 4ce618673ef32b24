"""The watcher survives what a real server does: kills, restarts, BYE."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_bot.imap.watcher import MailboxWatcher
from tests.dovecot import Dovecot, simple_message
from tests.mailbox_helpers import (
    Blackhole,
    Recorder,
    linkedin_message,
    running,
    settings_for,
    until,
)


@pytest.mark.parametrize("how", ["kill", "stop"])
async def test_server_outage_while_idling(dovecot: Dovecot, tmp_path: Path, how: str) -> None:
    """Dovecot killed (or stopped with BYE) mid-IDLE: reconnect, deliver the outage's mail once."""
    recorder = Recorder()
    async with running(settings_for(dovecot, tmp_path), recorder) as watcher:
        dovecot.append(simple_message("before"))
        await recorder.wait_for(1)
        dovecot.kill() if how == "kill" else dovecot.stop()
        await until(lambda: watcher.state == "backoff")
        assert not watcher.watching.is_set()
        dovecot.write_maildir([linkedin_message("during the outage"), simple_message("too")])
        dovecot.start()
        await recorder.wait_for(3)
        await until(watcher.watching.is_set)
        dovecot.append(simple_message("after"))
        await recorder.wait_for(4)
    assert recorder.uids == dovecot.uids()
    assert len(set(recorder.uids)) == 4


async def test_server_down_at_start_then_up(tmp_path: Path) -> None:
    """A watcher started before its server backs off, then connects and catches up."""
    server = Dovecot()
    try:
        server.write_maildir([linkedin_message("waiting")])
        recorder = Recorder()
        async with running(settings_for(server, tmp_path), recorder, wait_watching=False) as w:
            await until(lambda: w.state == "backoff")
            server.start()
            await recorder.wait_for(1)
            assert w.watching.is_set()
    finally:
        server.cleanup()


async def test_progress_moves_on_silent_idle(dovecot: Dovecot, tmp_path: Path) -> None:
    """IDLE is re-issued (with a NOOP probe) when silent, and that counts as progress."""
    settings = settings_for(dovecot, tmp_path, imap_idle_interval=0.3)
    async with running(settings, Recorder()) as watcher:
        first = watcher.last_progress
        await until(lambda: watcher.last_progress > first)
        assert watcher.state == "watching"


def test_watcher_starts_stopped(dovecot: Dovecot, tmp_path: Path) -> None:
    """Before run() the watcher is not watching and says so."""
    from otp_bot.store.db import Store

    settings = settings_for(dovecot, tmp_path)
    store = Store(settings.state_db)
    watcher = MailboxWatcher(settings, store, Recorder())
    assert (watcher.state, watcher.watching.is_set()) == ("stopped", False)
    store.close()


async def test_half_open_connection_is_replaced(dovecot: Dovecot, tmp_path: Path) -> None:
    """A connection that goes silent (half-open) is timed out and replaced; no mail is lost."""
    relay = Blackhole(dovecot.host, dovecot.port)
    try:
        settings = settings_for(
            dovecot, tmp_path, imap_port=relay.port, imap_idle_interval=0.5, imap_timeout=1
        )
        recorder = Recorder()
        async with running(settings, recorder) as watcher:
            dovecot.append(simple_message("before"))
            await recorder.wait_for(1)
            relay.freeze()
            uid = dovecot.append(linkedin_message("sent into the void"))
            await recorder.wait_for(2)
            assert watcher.state == "watching"
        assert recorder.uids[1] == uid
        assert relay.connections >= 2
    finally:
        relay.close()
