"""The mailbox watcher against a real Dovecot: wake-ups, ordering, state, first start."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from otp_bot.imap.watcher import IncomingMail
from otp_bot.store.db import Store, Watermark
from tests.dovecot import Dovecot, bytes_sent, simple_message
from tests.mailbox_helpers import Recorder, linkedin_message, running, settings_for, until

DAY = 86400.0


def _normal(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


async def test_idle_wakeup_delivers_candidate_whole(dovecot: Dovecot, tmp_path: Path) -> None:
    """Mail appended while idling is handed off once, whole, with its INTERNALDATE, unread."""
    recorder = Recorder()
    raw = linkedin_message("Your code")
    async with running(settings_for(dovecot, tmp_path), recorder) as watcher:
        assert watcher.state == "watching"
        uid = dovecot.append(raw)
        await recorder.wait_for(1)
    [mail] = recorder.mails
    assert (mail.uid, mail.complete) == (uid, True)
    assert _normal(mail.raw) == _normal(raw)
    assert mail.internal_date is not None
    assert mail.internal_date.utcoffset() is not None
    assert "\\Seen" not in dovecot.flags(uid)
    assert watcher.state == "stopped"


async def test_non_candidate_arrives_as_headers_only(dovecot: Dovecot, tmp_path: Path) -> None:
    """Mail not from linkedin.com is handed off as its header block, complete=False."""
    recorder = Recorder()
    async with running(settings_for(dovecot, tmp_path), recorder):
        dovecot.append(simple_message("newsletter", sender="news@linkedin.com.evil.example"))
        await recorder.wait_for(1)
    [mail] = recorder.mails
    assert not mail.complete
    assert b"Subject: newsletter" in mail.raw
    assert b"\nhi" not in _normal(mail.raw)


async def test_oversized_candidate_is_truncated(dovecot: Dovecot, tmp_path: Path) -> None:
    """A candidate above imap_max_message_bytes is read only up to the bound."""
    recorder = Recorder()
    big = linkedin_message() + b"x" * 60_000 + b"\r\n"
    settings = settings_for(dovecot, tmp_path, imap_max_message_bytes=20_000)
    async with running(settings, recorder):
        dovecot.append(big)
        await recorder.wait_for(1)
    [mail] = recorder.mails
    assert (len(mail.raw), mail.complete) == (20_000, False)


async def test_many_messages_at_once_in_uid_order(dovecot: Dovecot, tmp_path: Path) -> None:
    """A burst of 250 messages is delivered completely, in UID order, exactly once."""
    recorder = Recorder()
    async with running(settings_for(dovecot, tmp_path), recorder):
        burst = [linkedin_message(f"n{i}") if i % 10 == 0 else simple_message() for i in range(250)]
        dovecot.write_maildir(burst)
        await recorder.wait_for(250)
        dovecot.append(simple_message("after the burst"))
        await recorder.wait_for(251)
    assert recorder.uids == sorted(set(recorder.uids))
    assert recorder.uids == dovecot.uids()
    assert sum(mail.complete for mail in recorder.mails) == 25


async def test_restarted_watcher_resumes_after_last_uid(dovecot: Dovecot, tmp_path: Path) -> None:
    """A new watcher on the same state delivers only what came after the last handled UID."""
    settings = settings_for(dovecot, tmp_path)
    first = Recorder()
    async with running(settings, first):
        for i in range(3):
            dovecot.append(simple_message(f"first {i}"))
        await first.wait_for(3)
    later = [dovecot.append(simple_message(f"while stopped {i}")) for i in range(2)]
    second = Recorder()
    async with running(settings, second):
        await second.wait_for(2)
        dovecot.append(simple_message("live"))
        await second.wait_for(3)
    assert second.uids[:2] == later
    assert set(first.uids).isdisjoint(second.uids)


async def test_handler_failure_holds_the_watermark(dovecot: Dovecot, tmp_path: Path) -> None:
    """A handler that raises does not advance the watermark; the message is retried next time."""
    failing = {"once": True}

    def fail(mail: IncomingMail) -> bool:
        if failing["once"]:
            failing["once"] = False
            return True
        return False

    recorder = Recorder(fail=fail)
    settings = settings_for(dovecot, tmp_path)
    async with running(settings, recorder):
        first = dovecot.append(simple_message("refused once"))
        await recorder.wait_calls(1)
        second = dovecot.append(simple_message("next"))  # the next wake-up
        await recorder.wait_for(2)
    assert recorder.uids == [first, second]
    assert recorder.calls == 3


async def test_first_start_skips_old_mail_of_a_huge_folder(tmp_path: Path) -> None:
    """A 20,000-message folder starts without downloading it; recent mail is still read."""
    server = Dovecot()
    try:
        server.write_maildir(
            [simple_message(f"old {i}") for i in range(20_000)], received=time.time() - 3 * DAY
        )
        server.start()
        server.uids()  # let Dovecot index the folder first, as a real server has
        recent = server.append(linkedin_message("recent"))
        before = bytes_sent(server.log_tail(100_000))
        recorder = Recorder()
        async with running(settings_for(server, tmp_path), recorder):
            await recorder.wait_for(1)
            uid = server.append(simple_message("live"))
            await recorder.wait_for(2)
        assert recorder.uids == [recent, uid]
        assert recorder.mails[0].complete
        # The watcher logged out; Dovecot counted what it sent it. The folder
        # holds ~6 MB; the bot read two messages and 200 dates.
        assert bytes_sent(server.log_tail(100_000)) - before < 100_000
    finally:
        server.cleanup()


async def test_uidvalidity_change_rescans_with_dedup(tmp_path: Path) -> None:
    """A recreated folder (new UIDVALIDITY) delivers only mail whose Message-ID is new."""
    server = Dovecot().start()
    try:
        settings = settings_for(server, tmp_path)
        known = [linkedin_message(f"known {i}") for i in range(2)]
        recorder = Recorder()
        async with running(settings, recorder):
            for raw in known:
                server.append(raw)
            await recorder.wait_for(2)
        old = Store(settings.state_db).watermark(settings.account_id, "INBOX")
        server.stop()
        assert old is not None
        server.recreate_inbox(uidvalidity=old.uidvalidity + 7)
        fresh = linkedin_message("fresh")
        server.write_maildir([*known, fresh])
        server.start()
        again = Recorder()
        async with running(settings, again):
            await again.wait_for(1)
            server.append(simple_message("live"))
            await again.wait_for(2)
        assert _normal(again.mails[0].raw) == _normal(fresh)
        new = Store(settings.state_db).watermark(settings.account_id, "INBOX")
        assert new == Watermark(old.uidvalidity + 7, 4)
    finally:
        server.cleanup()


async def test_stop_returns_within_two_seconds(dovecot: Dovecot, tmp_path: Path) -> None:
    """run() returns within 2 s of stop being set while idling (hard bound from the issue)."""
    from otp_bot.imap.watcher import MailboxWatcher

    settings = settings_for(dovecot, tmp_path)
    store = Store(settings.state_db)
    watcher = MailboxWatcher(settings, store, Recorder())
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await asyncio.wait_for(watcher.watching.wait(), 10)
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 2.0
    assert watcher.state == "stopped"
    assert not watcher.watching.is_set()
    store.close()


def _greet_late(conn: socket.socket) -> bytes:
    """Be an IMAP server at last: greet, answer imaplib's CAPABILITY, then return
    whatever the client sends until it closes the connection."""
    conn.settimeout(10)
    conn.sendall(b"* OK hung until now\r\n")
    line = conn.makefile("rb").readline()
    conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + line.split()[0] + b" OK done\r\n")
    rest = b""
    while chunk := conn.recv(4096):
        rest += chunk
    return rest


async def test_stop_while_connecting_returns_at_once_and_drops_the_connection(
    tmp_path: Path,
) -> None:
    """A server that takes the connection but does not greet (the connect hangs inside
    imap-tools, where abort() cannot reach it): run() still returns within 2 s of stop,
    and when the greeting comes at last the abandoned connection is closed unused."""
    from otp_bot.imap.watcher import MailboxWatcher

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)  # a watcher that never connects fails the test, not hangs it
    host, port = listener.getsockname()[:2]
    server = SimpleNamespace(host=host, port=port, user="u", password="p")
    settings = settings_for(server, tmp_path, imap_timeout=60)
    store = Store(settings.state_db)
    stop = asyncio.Event()
    task = asyncio.create_task(MailboxWatcher(settings, store, Recorder()).run(stop))
    conn, _ = await asyncio.to_thread(listener.accept)  # the connect is under way
    try:
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 2.0
        assert await asyncio.to_thread(_greet_late, conn) == b""  # no LOGIN: closed
    finally:
        conn.close()
        listener.close()
        store.close()


async def test_stop_while_waiting_for_the_connect_gate(dovecot: Dovecot, tmp_path: Path) -> None:
    """A mailbox queued behind other connects (the process's connect gate) stops at once,
    and its place in the queue is given up, not kept."""
    from otp_bot.imap.watcher import MailboxWatcher, WatcherLinks, WatcherState

    gate = asyncio.Semaphore(1)
    await gate.acquire()  # another mailbox's connect, taking for ever
    settings = settings_for(dovecot, tmp_path)
    store = Store(settings.state_db)
    watcher = MailboxWatcher(settings, store, Recorder(), links=WatcherLinks(connect_gate=gate))
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await until(lambda: watcher.state == WatcherState.CONNECTING)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert watcher.state == "stopped"
    gate.release()
    assert not gate.locked()  # the stopped watcher took no place
    store.close()


@pytest.mark.parametrize("action", ["seen", "move", "delete"])
async def test_after_use_actions(dovecot: Dovecot, tmp_path: Path, action: str) -> None:
    """after_use marks seen, moves or deletes exactly the used message."""
    recorder = Recorder()
    settings = settings_for(dovecot, tmp_path, mail_after_use=action)
    async with running(settings, recorder) as watcher:
        used = dovecot.append(linkedin_message())
        other = dovecot.append(simple_message("keep me"))
        await recorder.wait_for(2)
        await watcher.after_use(recorder.mails[0])
    if action == "seen":
        assert "\\Seen" in dovecot.flags(used)
        assert dovecot.uids() == [used, other]
    else:
        assert dovecot.uids() == [other]
    if action == "move":
        assert len(dovecot.uids(folder="otp-bot.used")) == 1  # Maildir++ delimiter
    assert "\\Seen" not in dovecot.flags(other)


async def test_server_without_idle_is_polled(tmp_path: Path) -> None:
    """Without IDLE the watcher polls, and still delivers new mail."""
    server = Dovecot(idle=False).start()
    try:
        recorder = Recorder()
        settings = settings_for(server, tmp_path, imap_poll_interval=0.3)
        async with running(settings, recorder) as watcher:
            uid = server.append(linkedin_message())
            await recorder.wait_for(1)
            before = watcher.last_progress
            # No mail arrives now: only polling can move the progress mark.
            await until(lambda: watcher.last_progress > before)
        assert recorder.uids == [uid]
    finally:
        server.cleanup()


async def test_after_use_from_inside_the_handler(dovecot: Dovecot, tmp_path: Path) -> None:
    """after_use awaited inside the handler itself completes (no stall) and applies."""
    from otp_bot.imap.watcher import MailboxWatcher

    settings = settings_for(dovecot, tmp_path, mail_after_use="seen")
    store = Store(settings.state_db)
    done = asyncio.Event()

    async def handler(mail: IncomingMail) -> None:
        await watcher.after_use(mail)
        done.set()

    watcher = MailboxWatcher(settings, store, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        await asyncio.wait_for(watcher.watching.wait(), 10)
        uid = dovecot.append(linkedin_message())
        await asyncio.wait_for(done.wait(), 10)
        assert "\\Seen" in dovecot.flags(uid)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        store.close()


async def test_after_use_while_disconnected_waits_for_reconnect(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """after_use during an outage is applied once the watcher is connected again."""
    recorder = Recorder()
    settings = settings_for(dovecot, tmp_path, mail_after_use="delete")
    async with running(settings, recorder) as watcher:
        used = dovecot.append(linkedin_message())
        await recorder.wait_for(1)
        dovecot.stop()
        await until(lambda: watcher.state == "backoff")
        await watcher.after_use(recorder.mails[0])  # returns at once: deferred
        dovecot.start()
        await until(lambda: used not in dovecot.uids())
