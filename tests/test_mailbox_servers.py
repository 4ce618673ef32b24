"""The mailbox tests that matter, against every real IMAP server of the suite.

Each test runs once per server in ``conftest.SERVERS`` (Dovecot, pymap and,
where installed, Courier): IDLE wake-up, catch-up, a new UIDVALIDITY, after-use
actions next to another client's deleted mail, and reconnecting.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from otp_bot.imap.watcher import WatcherLinks
from otp_bot.store.db import Store
from tests.dovecot import Dovecot, simple_message
from tests.mailbox_helpers import Recorder, linkedin_message, running, settings_for, until

Server = Any  # tests.dovecot.Dovecot, tests.imap_servers.Pymap, tests.courier.Courier
# A checkpoint waits, so the folder is probed every second: Courier's IDLE
# alone announces new mail only every 60 s, beyond the delivery bound.
WAITING = WatcherLinks(awaiting_code=lambda: True)


def watched(server: Server, state_dir: Path, **overrides: Any) -> Any:
    """Settings for a watcher of ``server`` that probes every second while a code waits."""
    return settings_for(server, state_dir, imap_probe_interval=1, **overrides)


async def test_idle_wakeup(imap_server: Server, tmp_path: Path) -> None:
    """Mail appended while the watcher idles is handed off, unread, with a measured lag.

    Where the server announces mail promptly (Dovecot, pymap) the probe is
    600 s away, so only the IDLE notification can deliver in time.
    """
    lags: list[float] = []
    recorder = Recorder()
    # Only the server's IDLE can be this fast where it announces mail promptly;
    # on Courier the probe of a waiting checkpoint finds it.
    probe = 600 if imap_server.idle_prompt else 1
    settings = settings_for(imap_server, tmp_path, imap_probe_interval=probe)
    links = WatcherLinks(awaiting_code=lambda: True, mail_lag=lags.append)
    async with running(settings, recorder, links=links):
        uid = imap_server.append(linkedin_message())
        await recorder.wait_for(1)
    assert recorder.uids == [uid]
    assert recorder.mails[0].complete
    assert "\\Seen" not in imap_server.flags(uid)
    assert len(lags) == 1
    assert 0 <= lags[0] < 20  # INTERNALDATE has whole seconds; the server is local


async def test_catch_up_after_a_stop(imap_server: Server, tmp_path: Path) -> None:
    """Mail that came while the bot was stopped is delivered once, after the last handled UID."""
    settings = watched(imap_server, tmp_path)
    first = Recorder()
    async with running(settings, first, links=WAITING):
        imap_server.append(simple_message("first"))
        await first.wait_for(1)
    later = [imap_server.append(linkedin_message(f"while stopped {i}")) for i in range(2)]
    second = Recorder()
    async with running(settings, second, links=WAITING):
        await second.wait_for(2)
    assert second.uids == later


async def test_new_uidvalidity_rescans_with_dedup(imap_server: Server, tmp_path: Path) -> None:
    """A recreated INBOX (new UIDVALIDITY) delivers only mail whose Message-ID is new."""
    settings = watched(imap_server, tmp_path)
    known = linkedin_message("known")
    recorder = Recorder()
    async with running(settings, recorder, links=WAITING):
        imap_server.append(known)
        await recorder.wait_for(1)
    store = Store(settings.state_db)
    old = store.watermark(settings.account_id, "INBOX")
    store.close()
    assert old is not None
    imap_server.stop()
    imap_server.recreate_inbox(uidvalidity=old.uidvalidity + 7)
    fresh = linkedin_message("fresh")
    imap_server.write_maildir([known, fresh])
    imap_server.start()
    again = Recorder()
    async with running(settings, again, links=WAITING):
        await again.wait_for(1)
        imap_server.append(simple_message("live"))
        await again.wait_for(2)
    assert b"Subject: fresh" in again.mails[0].raw
    assert [mail.uidvalidity for mail in again.mails] == [old.uidvalidity + 7] * 2


def _mark_deleted_elsewhere(server: Server, uid: int) -> None:
    """Another client (a phone) marks ``uid`` \\Deleted and does not expunge."""
    conn = server.client()
    try:
        conn.select("INBOX")
        typ, data = conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
        assert typ == "OK", data
    finally:
        conn.logout()  # LOGOUT, not CLOSE: CLOSE would expunge


@pytest.mark.parametrize("action", ["move", "delete"])
async def test_after_use_spares_other_deleted_mail(
    imap_server: Server, tmp_path: Path, action: str
) -> None:
    """Moving or deleting the used message leaves another client's \\Deleted mail in place."""
    recorder = Recorder()
    settings = watched(imap_server, tmp_path, mail_after_use=action)
    async with running(settings, recorder, links=WAITING) as watcher:
        theirs = imap_server.append(simple_message("deleted on the phone, not yet expunged"))
        imap_server.append(linkedin_message())
        await recorder.wait_for(2)
        _mark_deleted_elsewhere(imap_server, theirs)
        with capture_logs() as logs:
            await watcher.after_use(recorder.mails[1])
    assert [e["event"] for e in logs] == ["mailbox_after_use"]
    assert imap_server.uids() == [theirs]
    assert "\\Deleted" in imap_server.flags(theirs)
    if action == "move":
        assert len(imap_server.uids(folder=imap_server.used_folder)) == 1


async def test_reconnect_resets_backoff(imap_server: Server, tmp_path: Path) -> None:
    """After an outage the watcher reconnects and catches up; the next outage starts at base.

    The backoff grows while the server is down; once a connection got
    through its catch-up, the first retry after the next failure is short again.
    """
    recorder = Recorder()
    settings = watched(imap_server, tmp_path, imap_backoff_max=2)
    with capture_logs() as logs:
        async with running(settings, recorder, links=WAITING) as watcher:
            for outage in range(2):
                before = _disconnects(logs)
                imap_server.kill()
                await until(lambda: watcher.state == "backoff")
                await until(lambda n=before: _disconnects(logs) >= n + 3)
                imap_server.write_maildir([linkedin_message(f"during outage {outage}")])
                imap_server.start()
                await recorder.wait_for(outage + 1)
                await until(watcher.watching.is_set)
    delays = [e["backoff"] for e in logs if e["event"] == "mailbox_disconnected"]
    first_of_second = delays[_index_after_reconnect(logs)]
    assert max(delays) >= 1.0  # it grew while the server was down (third try: 1-2 s) ...
    assert first_of_second <= 0.5  # ... and started again at base after the catch-up
    assert len(recorder.uids) == 2


def _disconnects(logs: list[dict[str, Any]]) -> int:
    return sum(e["event"] == "mailbox_disconnected" for e in logs)


def _index_after_reconnect(logs: list[dict[str, Any]]) -> int:
    """Index (among disconnects) of the first disconnect after a catch-up that followed one."""
    seen_disconnect = caught_up = False
    index = -1
    for event in logs:
        if event["event"] == "mailbox_disconnected":
            index += 1
            if caught_up:
                return index
            seen_disconnect = True
        elif event["event"] == "mailbox_catchup" and seen_disconnect:
            caught_up = True
    raise AssertionError("no disconnect after a reconnect")


async def test_probing_while_a_code_is_awaited(tmp_path: Path) -> None:
    """A waiting draft turns a 600 s poll into a probe every 0.3 s (the nudge ends the wait).

    The server has no IDLE and the poll interval is far beyond the delivery
    bound, so only the probe can deliver the mail in time.
    """
    server = Dovecot(idle=False).start()
    waiting = {"now": False}
    try:
        settings = settings_for(server, tmp_path, imap_poll_interval=600, imap_probe_interval=0.3)
        links = WatcherLinks(awaiting_code=lambda: waiting["now"])
        recorder = Recorder()
        async with running(settings, recorder, links=links) as watcher:
            waiting["now"] = True
            before = watcher.last_progress
            watcher.nudge()  # as the account does when a draft enters awaiting_code
            # The nudged round ends (its wait, then its catch-up) before the mail comes.
            await until(lambda: watcher.last_progress > before)
            woken = watcher.last_progress
            await until(lambda: watcher.last_progress > woken)
            uid = server.append(linkedin_message())
            await recorder.wait_for(1)
        assert recorder.uids == [uid]
    finally:
        server.cleanup()


async def test_late_mail_warns_mailbox_idle_lag(dovecot: Dovecot, tmp_path: Path) -> None:
    """Mail whose arrival is minutes before the bot sees it is measured and warned about."""
    lags: list[float] = []
    recorder = Recorder()
    links = WatcherLinks(mail_lag=lags.append)
    with capture_logs() as logs:
        async with running(settings_for(dovecot, tmp_path), recorder, links=links):
            dovecot.write_maildir([linkedin_message()], received=time.time() - 300)
            await recorder.wait_for(1)
    [warning] = [e for e in logs if e["event"] == "mailbox_idle_lag"]
    assert warning["log_level"] == "warning"
    assert (warning["uid"], warning["seen_by"]) == (recorder.uids[0], "idle")
    assert 290 <= warning["lag"] < 330
    assert len(lags) == 1
    assert 290 <= lags[0] < 330
