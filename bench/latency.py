"""APPEND -> message handed to the bot, beside the raw floor, measured in one run.

A private Dovecot on loopback; the bot (``MailboxWatcher``) and a bare
imap-tools IDLE client (the floor: IDLE, ``UID SEARCH``, fetch with
``mark_seen=False``, nothing else) watch the same folder at the same time.
Each message is APPENDed over an already logged-in connection; both clients
stamp it when they have it in hand. Dovecot itself announces new mail about
500 ms after it arrives, so both numbers sit near that.

    .venv/bin/python bench/latency.py [MESSAGES]     # default 120

Goal from the issue: bot p50 <= 1.25 x floor p50.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402 - after the path set-up above
from imap_tools import MailBoxUnencrypted  # noqa: E402

from otp_bot.imap.reading import header_fields  # noqa: E402
from otp_bot.imap.watcher import IncomingMail, MailboxWatcher  # noqa: E402
from otp_bot.store.db import Store  # noqa: E402
from tests.dovecot import Dovecot  # noqa: E402
from tests.mailbox_helpers import linkedin_message, settings_for  # noqa: E402

GOAL_RATIO = 1.25
# Per message, both clients must have it within this long, or the run is broken.
MESSAGE_TIMEOUT = 30.0


class Stamps:
    """Message-ID -> perf_counter() when a client had the message, with waiting."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._cond = threading.Condition()

    def add(self, message_id: str) -> None:
        with self._cond:
            self.times.setdefault(message_id, time.perf_counter())
            self._cond.notify_all()

    def wait(self, message_id: str) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: message_id in self.times, MESSAGE_TIMEOUT):
                raise TimeoutError(f"{message_id} never arrived")


def floor_client(server: Dovecot, stamps: Stamps, stop: threading.Event) -> None:
    """The raw floor: a bare imap-tools IDLE client doing the same fetch."""
    with MailBoxUnencrypted(server.host, server.port, timeout=30).login(
        server.user, server.password, "INBOX"
    ) as box:
        last = max((int(uid) for uid in box.uids("ALL")), default=0)
        while not stop.is_set():
            box.idle.wait(timeout=1)  # any return, empty or not, means "search now"
            uids = [uid for uid in map(int, box.uids(f"UID {last + 1}:*")) if uid > last]
            if not uids:
                continue
            for msg in box.fetch(uid_list=[str(u) for u in uids], mark_seen=False, bulk=True):
                stamps.add(msg.headers["message-id"][0].strip())
            last = max(uids)


def summary(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


async def measure(server: Dovecot, count: int, state_dir: Path) -> tuple[list[float], list[float]]:
    bot_stamps, floor_stamps = Stamps(), Stamps()

    async def handler(mail: IncomingMail) -> None:
        _sender, message_id = header_fields(mail.raw)
        if message_id:
            bot_stamps.add(message_id)

    settings = settings_for(server, state_dir)
    store = Store(settings.state_db)
    watcher = MailboxWatcher(settings, store, handler)
    stop, floor_stop = asyncio.Event(), threading.Event()
    bot = asyncio.create_task(watcher.run(stop))
    floor = threading.Thread(target=floor_client, args=(server, floor_stamps, floor_stop))
    floor.start()
    await asyncio.wait_for(watcher.watching.wait(), 30)
    appender = imaplib.IMAP4(server.host, server.port, timeout=30)
    appender.login(server.user, server.password)
    bot_ms, floor_ms = [], []
    try:
        for i in range(count + 1):
            message_id = f"<{uuid.uuid4().hex}@linkedin.com>"
            raw = linkedin_message(f"bench {i}", message_id=message_id)
            started = time.perf_counter()
            appender.append("INBOX", "", imaplib.Time2Internaldate(time.time()), raw)
            await asyncio.to_thread(bot_stamps.wait, message_id)
            await asyncio.to_thread(floor_stamps.wait, message_id)
            if i == 0:
                continue  # the first round warms both clients up
            bot_ms.append((bot_stamps.times[message_id] - started) * 1000)
            floor_ms.append((floor_stamps.times[message_id] - started) * 1000)
    finally:
        appender.logout()
        stop.set()
        floor_stop.set()
        await bot
        floor.join()
        store.close()
    return bot_ms, floor_ms


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    server = Dovecot().start()
    try:
        with tempfile.TemporaryDirectory() as state:
            bot_ms, floor_ms = asyncio.run(measure(server, count, Path(state)))
    finally:
        server.cleanup()
    print(f"APPEND -> handed off, {count} messages, Dovecot on loopback (milliseconds)")
    print(f"{'':8}{'p50':>10}{'p95':>10}{'max':>10}")
    for name, values in (("bot", bot_ms), ("floor", floor_ms)):
        p50, p95, top = summary(values)
        print(f"{name:8}{p50:10.1f}{p95:10.1f}{top:10.1f}")
    ratio = statistics.median(bot_ms) / statistics.median(floor_ms)
    verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
    print(f"p50 ratio bot/floor: {ratio:.3f} ({verdict} the goal <= {GOAL_RATIO})")


if __name__ == "__main__":
    main()
