"""Dovecot's own floor of e-mail -> notice latency in a storm, with no otp-bot daemon.

For each N: the same private Dovecot as bench/scale.py (one user per account,
high-performance login mode, raised limits and inotify instances, every INBOX
opened once), N plain IMAP connections from a minimal asyncio client (LOGIN,
SELECT INBOX, IDLE; one coroutine per connection that only reads lines), then
one LinkedIn e-mail APPENDed to every mailbox at once, the way the simulator
delivers a storm (``otp_bot.sim.linkedin_mail.append`` on asyncio's default
thread pool: connect, LOGIN, APPEND, LOGOUT). Per mailbox: the end of its
APPEND (when the simulator records ``delivered_at``) to the ``* n EXISTS``
line on its IDLE connection. Negative values are possible: Dovecot may
announce the mail before the APPEND's LOGOUT completes.

    .venv/bin/python bench/idle_floor.py [N ...]      # default: 1 500

Prints p50/p95/max per N, the ratios to the first N, and one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from scale import dovecot_for, inotify_raised, warm  # noqa: E402 - after the path set-up above

from otp_bot.sim.linkedin_mail import MailTarget, append, compose  # noqa: E402
from tests.dovecot import Dovecot  # noqa: E402

STEP_TIMEOUT = 60.0  # any one IMAP exchange (login, select, idle) must answer within this
NOTICE_TIMEOUT = 120.0  # longest wait for one mailbox's EXISTS after the storm
LOGIN_CONCURRENCY = 20  # connections being set up at once (the set-up is not measured)
EXISTS = re.compile(rb"^\* \d{1,10} EXISTS\r?$")


class Watcher:
    """One IDLE connection: set up, then the moment its mailbox announces new mail."""

    def __init__(self, server: Dovecot, user: str) -> None:
        self.server, self.user = server, user
        self.noticed = asyncio.get_running_loop().create_future()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection(self.server.host, self.server.port)
        self._reader, self._writer = reader, writer
        await self._until(b"* OK")
        await self._command(b"a1", f"LOGIN {self.user} {self.server.password}".encode())
        await self._command(b"a2", b"SELECT INBOX")
        writer.write(b"a3 IDLE\r\n")
        await self._until(b"+")

    async def watch(self) -> None:
        """Read lines until EXISTS arrives; record its monotonic time."""
        assert self._reader is not None
        while not self.noticed.done():
            line = (await self._reader.readline()).rstrip(b"\n")
            if not line:
                raise ConnectionError(f"{self.user}: connection closed while idling")
            if EXISTS.match(line):
                self.noticed.set_result(time.monotonic())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, TimeoutError):  # the bench is done with it
                await asyncio.wait_for(self._writer.wait_closed(), 5)

    async def _command(self, tag: bytes, command: bytes) -> None:
        assert self._writer is not None
        self._writer.write(tag + b" " + command + b"\r\n")
        line = await self._until(tag + b" ")
        if not line.startswith(tag + b" OK"):
            raise ConnectionError(f"{self.user}: {line[:200]!r}")

    async def _until(self, prefix: bytes) -> bytes:
        assert self._reader is not None
        while True:
            line = await asyncio.wait_for(self._reader.readline(), STEP_TIMEOUT)
            if not line:
                raise ConnectionError(f"{self.user}: connection closed")
            if line.startswith(prefix):
                return line


async def deliver(target: MailTarget) -> float:
    """APPEND one LinkedIn OTP e-mail as the simulator does; the monotonic time it ended."""
    mail = compose("OTP", target.user, datetime.now(UTC), authserv_id="mx.example.test")
    await asyncio.to_thread(lambda: append(target, mail.raw))
    return time.monotonic()


async def storm(server: Dovecot) -> list[float]:
    """Every mailbox in IDLE, then one APPEND each at once: per mailbox, APPEND end -> EXISTS."""
    watchers = [Watcher(server, user) for user in server.users]
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def opened(watcher: Watcher) -> None:
        async with gate:
            await watcher.open()

    try:
        await asyncio.gather(*(opened(w) for w in watchers))
        readers = [asyncio.create_task(w.watch()) for w in watchers]
        targets = [
            MailTarget(server.host, server.port, user, server.password) for user in server.users
        ]
        appended = await asyncio.gather(*(deliver(t) for t in targets))
        noticed = await asyncio.wait_for(
            asyncio.gather(*(w.noticed for w in watchers)), NOTICE_TIMEOUT
        )
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        await asyncio.gather(*(w.close() for w in watchers))
    return [seen - done for seen, done in zip(noticed, appended, strict=True)]


def run_one(n: int) -> dict[str, Any]:
    server = dovecot_for(n)
    try:
        warm(server)
        latency = sorted(asyncio.run(storm(server)))
    finally:
        server.cleanup()
    return {
        "n": n,
        "p50_s": statistics.median(latency),
        "p95_s": latency[min(len(latency) - 1, round(0.95 * (len(latency) - 1)))],
        "max_s": latency[-1],
        "min_s": latency[0],
        "measured": len(latency),
    }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1, 500]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # N IDLE sockets and more
    rows = []
    with inotify_raised(max(sizes) + 256):
        for n in sizes:
            print(f"# N={n} ...", file=sys.stderr, flush=True)
            rows.append(run_one(n))
    print("N | APPEND end -> EXISTS p50 s | p95 s | max s | min s | measured")
    for row in rows:
        print(
            f"{row['n']} | {row['p50_s']:.3f} | {row['p95_s']:.3f} | {row['max_s']:.3f}"
            f" | {row['min_s']:.3f} | {row['measured']}"
        )
    base = rows[0]
    for row in rows[1:]:
        ratios = {k: row[k] / base[k] if base[k] > 0 else float("nan") for k in ("p50_s", "p95_s")}
        print(
            f"ratios N={row['n']} to N={base['n']} (same run): p50 {ratios['p50_s']:.2f}x,"
            f" p95 {ratios['p95_s']:.2f}x"
        )
    print(json.dumps({"idle_floor": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
