"""Start-up to watching, with 1,000 and with 50,000 messages in the folder.

A private Dovecot holds N old messages (arrived two days ago, written straight
into its Maildir and indexed, as a live server's folder has been). Timed from
``MailboxWatcher.run()`` to ``watching`` being set; best and median of
several runs:

- first start: an empty state directory (bounded look-back window);
- resume: the state already holds the watermark at the newest message;
- resume + 100 new: 100 messages arrived while the bot was down.

After each of the bot's runs the floor is measured on the same server state:
a bare imap-tools client connecting, logging in and selecting the folder (for
"+100 new": also reading the same 100 headers). Dovecot's SELECT itself grows
with the folder (it loads the folder's index, UID list and transaction log),
so "bot - floor" is what the bot adds. The server runs with
``maildir_very_dirty_syncs = yes`` (the usual setting when only Dovecot
touches the Maildir); without it a SELECT of 50,000 messages costs ~130 ms.

    .venv/bin/python bench/catchup.py [RUNS]     # default 9

Goal from the issue: 50,000 / 1,000 <= 1.2 for start-up (cost grows with new
mail, not with the folder's size). The verdict line judges the bot's totals;
compare it with the floor's own ratio on the same lines.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402 - after the path set-up above
from imap_tools import MailBoxUnencrypted  # noqa: E402

from otp_bot.imap.watcher import IncomingMail, MailboxWatcher  # noqa: E402
from otp_bot.store.db import Store  # noqa: E402
from tests.dovecot import Dovecot, simple_message  # noqa: E402
from tests.mailbox_helpers import settings_for  # noqa: E402

SIZES = (1_000, 50_000)
GOAL_RATIO = 1.2
NEW_WHILE_DOWN = 100
TWO_DAYS = 2 * 86400.0
KINDS = ("first start", "resume", "resume + 100 new")


async def time_to_watching(server: Dovecot, state_dir: Path) -> float:
    async def handler(_mail: IncomingMail) -> None:
        return None

    settings = settings_for(server, state_dir)
    store = Store(settings.state_db)
    watcher = MailboxWatcher(settings, store, handler)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(watcher.run(stop))
    await asyncio.wait_for(watcher.watching.wait(), 120)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    store.close()
    return elapsed


def floor(server: Dovecot, last: int | None = None) -> tuple[float, int]:
    """A bare imap-tools client: connect, log in, select; with ``last``, also read
    the headers of everything above it (what the bot does with non-LinkedIn mail).
    Returns the time and the new last UID."""
    started = time.perf_counter()
    box = MailBoxUnencrypted(server.host, server.port, timeout=30)
    box.login(server.user, server.password, "INBOX")
    if last is not None:
        uids = [uid for uid in box.uids(f"UID {last + 1}:*") if int(uid) > last]
        for msg in box.fetch(uid_list=uids, mark_seen=False, headers_only=True, bulk=500):
            last = max(last, int(msg.uid or 0))
    elapsed = time.perf_counter() - started
    box.logout()
    return elapsed, last or 0


def append_new(server: Dovecot) -> None:
    """Mail arriving while the bot is down, delivered the way an MTA's LDA does it."""
    conn = server.client()
    try:
        for i in range(NEW_WHILE_DOWN):
            conn.append("INBOX", "", imaplib.Time2Internaldate(time.time()), simple_message(str(i)))
    finally:
        conn.logout()


def one_run(server: Dovecot, kind: str, base: Path, run: int) -> float:
    if kind == "first start":
        return asyncio.run(time_to_watching(server, base / f"first-{run}"))
    if kind == "resume + 100 new":
        append_new(server)
    return asyncio.run(time_to_watching(server, base / "resume"))


def measure(size: int, runs: int) -> dict[str, list[float]]:
    """Times per kind, each beside a floor measured between its runs (same server state)."""
    server = Dovecot(extra_config=("maildir_very_dirty_syncs = yes",))
    try:
        old = [simple_message(f"old {i}") for i in range(size)]
        server.write_maildir(old, received=time.time() - TWO_DAYS)
        server.start()
        floor(server)  # the first SELECT moves new/ to cur/ and builds the index
        # One delivery makes Dovecot rewrite its index (a live folder's state);
        # before that every SELECT replays the whole transaction log.
        conn = server.client()
        conn.append("INBOX", "", imaplib.Time2Internaldate(time.time()), simple_message("x"))
        conn.logout()
        result: dict[str, list[float]] = {}
        last = max(server.uids())
        with tempfile.TemporaryDirectory() as base:
            asyncio.run(time_to_watching(server, Path(base) / "resume"))  # watermark at the top
            for kind in KINDS:
                result[kind], result[f"floor {kind}"] = [], []
                for run in range(runs):
                    result[kind].append(one_run(server, kind, Path(base), run))
                    if kind == "resume + 100 new":
                        append_new(server)
                        elapsed, last = floor(server, last)
                    else:
                        elapsed = floor(server)[0]
                    result[f"floor {kind}"].append(elapsed)
        return result
    finally:
        server.cleanup()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    small, large = SIZES
    results = {size: measure(size, runs) for size in SIZES}
    print(f"start-up to watching (milliseconds; best of {runs} runs, median in brackets)")
    print(f"{'':20}{small:>16,}{large:>16,}{'ratio':>7}{'bot/floor':>11}{'bot - floor':>16}")
    worst = 0.0
    for kind in KINDS:
        for label in (kind, f"floor {kind}"):
            a, b = min(results[small][label]), min(results[large][label])
            a_med = statistics.median(results[small][label])
            b_med = statistics.median(results[large][label])
            extra = ""
            if label == kind:
                fa, fb = min(results[small][f"floor {kind}"]), min(results[large][f"floor {kind}"])
                extra = f"{b / fb:11.2f}{(a - fa) * 1e3:9.1f}{(b - fb) * 1e3:7.1f}"
            print(
                f"{label:20}{a * 1e3:8.1f} ({a_med * 1e3:5.1f}){b * 1e3:8.1f} ({b_med * 1e3:5.1f})"
                f"{b / a:7.2f}{extra}"
            )
        if kind in ("first start", "resume"):
            worst = max(worst, min(results[large][kind]) / min(results[small][kind]))
    verdict = "meets" if worst <= GOAL_RATIO else "MISSES"
    print(f"start-up ratio {large:,}/{small:,}: {worst:.2f} ({verdict} the goal <= {GOAL_RATIO})")
    print(
        "floor: a bare imap-tools client logging in and selecting (for +100 new: also"
        " reading the same headers), measured between the bot's runs"
    )


if __name__ == "__main__":
    main()
