"""How fast `otp_bot.mail.extract` reads mail, on one core, measured in one run.

Prints messages per second of one core's CPU time (best of several
windows) on typical LinkedIn mail (realistic 30 KB table-heavy messages,
and the genuine and spoofed messages of the golden corpus), the ratio to the
issue's goal of 2,000 messages/s, the ratio to the stdlib parser plus the
`authres` package doing the same parsing, the slowest hostile input's time
in-process (tests/emails/hostile.py and the corpus's hostile_* files; best of
5, CPU and wall clock) against the 20 ms goal, and what the daemon's reader
process adds: messages per second through it, one at a time. Then
``OTP_BOT_DKIM_VERIFY=self`` separately: the same verification mails signed
with a local key, verified by the bot with the key already cached (the DNS
lookup happens once per key and TTL, outside this measure).

    .venv/bin/python bench/extract.py
"""

from __future__ import annotations

import asyncio
import email
import os
import sys
import tempfile
import time
from collections.abc import Callable
from email.policy import compat32
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import authres  # noqa: E402 - after the path set-up above

from otp_bot.mail.extract import extract  # noqa: E402
from otp_bot.solve.reader import ProcessReader  # noqa: E402
from otp_bot.solve.reader_child import Reading  # noqa: E402
from tests.dkim_helpers import Signer  # noqa: E402
from tests.emails import hostile  # noqa: E402
from tests.emails import make_corpus as corpus  # noqa: E402

GOAL_PER_SECOND = 2_000
HOSTILE_GOAL_SECONDS = 0.020
READER_MAILS = 600
# Shared 2-core machines are noisy: measure in short windows, alternating the
# contenders, and keep each one's best window (noise only ever slows a window).
WINDOW_SECONDS = 0.3
WINDOWS = 7

_ROW = (
    '<tr><td style="padding:0 24px 16px 24px;font-family:-apple-system,system-ui,Roboto;'
    'font-size:14px;color:#000000e6"><table role="presentation" width="100%"><tr><td>'
    '<a href="https://www.linkedin.com/comm/feed/?lipi=urn%3Ali%3Apage%3Aemail_security%3BAb'
    '&amp;midToken=AQH8&amp;trk=eml-email_verification_pin-header-{n}-home">Item {n}</a>'
    "</td><td>{n} connections</td></tr></table></td></tr>\n"
)


def realistic_mails() -> list[bytes]:
    """Three 30 KB LinkedIn-like mails: a PIN, a confirmation with link, a job alert."""
    rows = "".join(_ROW.format(n=n) for n in range(60))
    pin = corpus.headers("Your verification code") + corpus.alternative(
        f"Hi Ana,\nYour verification code:\n\n042917\n\n{corpus.FOOTER_TEXT}",
        corpus.html_page(f"<p>Your verification code:</p><p>042917</p>{rows}"),
    )
    confirm = corpus.headers("Please confirm your email address", auth=corpus.M365) + (
        corpus.alternative(
            f"Use this code: 381920\nOr confirm: {corpus.CONFIRM}\n\n{corpus.FOOTER_TEXT}",
            corpus.html_page(f"<p>Use this code:</p><p>381920</p>{rows}"),
            cte="base64",
        )
    )
    alert = corpus.headers("25 new jobs for Data Engineer", auth=corpus.POSTFIX) + (
        corpus.alternative(
            f"25 new jobs\nSenior Data Engineer $165,000/yr\n{corpus.FOOTER_TEXT}",
            corpus.html_page(f"<h2>25 new jobs</h2>{rows}"),
        )
    )
    return [pin.encode(), confirm.encode(), alert.encode()]


def corpus_mails() -> list[bytes]:
    """The golden corpus minus its hostile files."""
    return [raw for name, (raw, _) in corpus.CASES.items() if not name.startswith("hostile")]


def _window_rate(read: Callable[[bytes], object], mails: list[bytes]) -> float:
    """Messages per second of this thread's CPU time: one core's throughput,
    not inflated by other processes competing for the cores."""
    count, started, cpu_started = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - started < WINDOW_SECONDS:
        for raw in mails:
            read(raw)
        count += len(mails)
    return count / (time.thread_time() - cpu_started)


def best_rates(contenders: list[Callable[[bytes], object]], mails: list[bytes]) -> list[float]:
    """Messages per second of each reader: its best of WINDOWS alternating windows."""
    for read in contenders:  # warm up caches
        for raw in mails:
            read(raw)
    best = [0.0] * len(contenders)
    for _ in range(WINDOWS):
        for i, read in enumerate(contenders):
            best[i] = max(best[i], _window_rate(read, mails))
    return best


def stdlib_and_authres(raw: bytes) -> object:
    """The straightforward way: the stdlib feed parser and authres, no text search."""
    msg = email.message_from_bytes(raw, policy=compat32)
    for part in msg.walk():
        part.get_payload(decode=True)
    value = msg.get("Authentication-Results", "")
    if value and not value.lstrip().startswith("spf="):
        authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
    return msg


def hostile_inputs() -> list[tuple[str, bytes]]:
    """The built hostile shapes and the corpus's hostile files."""
    stored = [(name, raw) for name, (raw, _) in corpus.CASES.items() if name.startswith("hostile")]
    return [(name, raw) for name, raw, _code in hostile.cases()] + stored


def slowest_hostile() -> tuple[str, float, float]:
    """The hostile input with the highest CPU time: name, CPU and wall seconds (best of 5)."""
    worst = ("", 0.0, 0.0)
    for name, raw in hostile_inputs():
        cpu = wall = float("inf")
        for _ in range(5):
            cpu_started, started = time.thread_time(), time.perf_counter()
            extract(raw)
            cpu = min(cpu, time.thread_time() - cpu_started)
            wall = min(wall, time.perf_counter() - started)
        worst = max(worst, (name, cpu, wall), key=lambda item: item[1])
    return worst


def dkim_self_rates(mails: list[bytes]) -> tuple[float, float]:
    """(server mode, self mode) msg/s on the verification mails, self signed with a cached key."""
    with tempfile.TemporaryDirectory() as workdir:
        signer = Signer.create(Path(workdir))
    signed = [signer.sign(raw) for raw in mails]

    def server(raw: bytes) -> object:
        return extract(raw)

    def self_checked(raw: bytes) -> object:
        found = extract(raw, server_results=False, dkim_keys=signer.lookup)
        assert found.dkim == "pass", found.reason
        return found

    rates = best_rates([server, self_checked], signed)
    return rates[0], rates[1]


def main() -> None:
    realistic, small = realistic_mails(), corpus_mails()
    avg = sum(map(len, realistic)) // len(realistic)
    fast, baseline = best_rates([extract, stdlib_and_authres], realistic)
    print(
        f"typical mail ({len(realistic)} LinkedIn-like, ~{avg // 1024} KB): {fast:,.0f} msg/s (CPU)"
    )
    print(f"  vs goal {GOAL_PER_SECOND:,}/s: x{fast / GOAL_PER_SECOND:.2f}")
    print(f"  vs stdlib parser + authres only ({baseline:,.0f} msg/s): x{fast / baseline:.2f}")
    (small_rate,) = best_rates([extract], small)
    print(f"golden corpus ({len(small)} genuine and spoofed mails): {small_rate:,.0f} msg/s")
    name, cpu, wall = slowest_hostile()
    print(f"slowest hostile input: {name} {cpu * 1000:.1f} ms CPU, {wall * 1000:.1f} ms wall")
    print(f"  vs goal {HOSTILE_GOAL_SECONDS * 1000:.0f} ms: x{cpu / HOSTILE_GOAL_SECONDS:.2f}")
    verification = realistic[:2]  # the PIN and the confirmation: read to the end
    (full,) = best_rates([extract], verification)
    print(
        f"verification mail only (PIN, confirmation; every check and the full reading): {full:,.0f}"
    )
    print(f"  vs goal {GOAL_PER_SECOND:,}/s: x{full / GOAL_PER_SECOND:.2f}")
    server, own = dkim_self_rates(verification)
    print(f"OTP_BOT_DKIM_VERIFY=self (signed, key cached): {own:,.0f} msg/s (CPU)")
    print(f"  vs server mode on the same mails ({server:,.0f} msg/s): x{own / server:.2f}")
    wall, parent_cpu, child_cpu = asyncio.run(through_reader(realistic))
    print(
        f"through the reader process (the daemon's path), one at a time: {1 / wall:,.0f} msg/s"
        f" on the clock; per mail {wall * 1000:.2f} ms wall, CPU {parent_cpu * 1000:.2f} ms"
        f" in the daemon + {child_cpu * 1000:.2f} ms in the reader"
        f" (in-process: {1000 / fast:.2f} ms)"
    )


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def through_reader(mails: list[bytes]) -> tuple[float, float, float]:
    """Per mail read through ProcessReader, one at a time: wall, daemon CPU, reader CPU."""
    reader = ProcessReader()
    try:
        await reader.read(mails[0], Reading(), 1.0)  # started and warm
        pid = reader.pid or 0
        child, cpu, started = _cpu_of(pid), time.process_time(), time.perf_counter()
        for index in range(READER_MAILS):
            await reader.read(mails[index % len(mails)], Reading(), 1.0)
        wall = time.perf_counter() - started
        cpu, child = time.process_time() - cpu, _cpu_of(pid) - child
        return wall / READER_MAILS, cpu / READER_MAILS, child / READER_MAILS
    finally:
        await reader.close()


if __name__ == "__main__":
    main()
