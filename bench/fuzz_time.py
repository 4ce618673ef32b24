"""Timing fuzzer: mail built to cost time, read in-process; prints the slowest input.

Beside bench/fuzz_extract.py (which looks for exceptions), this one looks for
slow paths: long runs of one character or of a short pattern, for every
character the reader's regexes touch, in From, Subject, Authentication-Results
(topmost and a lower, trusted one), text and HTML parts, at 1 KB, 64 KB and up
to each spot's size limit (tests/emails/timing.py builds them). Each input is
read as the daemon reads it (the IMAP pre-filter, then ``extract``) and timed
on this thread's CPU clock, best of ``--runs``, so other processes on the
machine do not inflate it. Goal: nothing over 20 ms.

    .venv/bin/python bench/fuzz_time.py [--runs 2] [--top 10] [--spot html]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emails.timing import SPOTS, TimingInput, inputs, read  # noqa: E402

GOAL_SECONDS = 0.020
# A reading still running after this much CPU is stopped (a SIGPROF timer) and
# reported as taking at least this long, so one runaway input cannot hang the run.
CUTOFF_SECONDS = 3.0


class Overrun(Exception):
    """Raised by the CPU timer inside a reading that ran past CUTOFF_SECONDS."""


def _overrun(_signum: int, _frame: Any) -> None:
    raise Overrun


def cpu_time(raw: bytes, runs: int) -> float:
    """This thread's CPU seconds for one reading, best of ``runs``."""
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        signal.setitimer(signal.ITIMER_PROF, CUTOFF_SECONDS)
        try:
            read(raw)
        except Overrun:
            return CUTOFF_SECONDS
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        best = min(best, time.thread_time() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--spot", choices=SPOTS, action="append")
    args = parser.parse_args()
    signal.signal(signal.SIGPROF, _overrun)
    started = time.perf_counter()
    timed: list[tuple[float, TimingInput]] = []
    errors: list[str] = []
    for item in inputs():
        if args.spot and item.spot not in args.spot:
            continue
        try:
            timed.append((cpu_time(item.raw, args.runs), item))
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            errors.append(f"{item.label}: {type(exc).__name__}: {exc}"[:200])
    timed.sort(key=lambda pair: pair[0], reverse=True)
    over = [pair for pair in timed if pair[0] > GOAL_SECONDS]
    print(f"inputs read:        {len(timed) + len(errors)}")
    print(f"exceptions:         {len(errors)}")
    if timed:
        seconds, slowest = timed[0]
        print(f"slowest input:      {slowest.label} ({len(slowest.raw):,} bytes)")
        print(f"  {seconds * 1000:.1f} ms CPU vs goal {GOAL_SECONDS * 1000:.0f} ms:"
              f" x{seconds / GOAL_SECONDS:.2f}")  # fmt: skip
    print(f"over {GOAL_SECONDS * 1000:.0f} ms:         {len(over)}")
    print(f"wall time:          {time.perf_counter() - started:.0f} s")
    for seconds, item in timed[: args.top]:
        print(f"  {seconds * 1000:8.1f} ms  {item.label}")
    for error in errors[:5]:
        print(error)
    return 1 if errors or over else 0


if __name__ == "__main__":
    raise SystemExit(main())
