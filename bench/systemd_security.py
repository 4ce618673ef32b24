"""Print the systemd exposure score of deploy/systemd/otp-bot@.service.

    python bench/systemd_security.py [--goal 2.0] [--verbose]

Runs ``systemd-analyze security --offline=yes`` on an instance of the
template (``otp-bot@example.service``; the template itself cannot be
analysed) and prints the "Overall exposure level" (0.0 best, 10.0 worst), the
goal, and every check that still adds exposure. Exits 1 when the score is
above the goal, 2 when systemd-analyze is missing or says nothing usable.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "systemd" / "otp-bot@.service"
INSTANCE = "otp-bot@example.service"
# The goal: "an exposure of at most 2.0".
GOAL = 2.0
_OVERALL_RE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")
# A failed check: "✗ Name   description   0.2" (the number is its weight).
_FAILED_RE = re.compile(r"^✗\s+(\S+)\s+(.*?)\s+(\d+\.\d+)\s*$")


def analyse(unit: Path = UNIT) -> str:
    """systemd-analyze's table for one instance of ``unit``."""
    with tempfile.TemporaryDirectory(prefix="otp-bot-security-") as tmp:
        instance = Path(tmp) / INSTANCE
        shutil.copyfile(unit, instance)
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(instance)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    return done.stdout + done.stderr


def overall(table: str) -> float | None:
    match = _OVERALL_RE.search(table)
    return float(match.group(1)) if match else None


def failed_checks(table: str) -> list[tuple[str, str, float]]:
    found = (_FAILED_RE.match(line.strip()) for line in table.splitlines())
    return [(m.group(1), m.group(2), float(m.group(3))) for m in found if m]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goal", type=float, default=GOAL)
    parser.add_argument("--verbose", action="store_true", help="print the whole table")
    args = parser.parse_args()
    if shutil.which("systemd-analyze") is None:
        print("systemd-analyze is missing (Debian package: systemd)", file=sys.stderr)
        return 2
    table = analyse()
    score = overall(table)
    if args.verbose or score is None:
        print(table)
    if score is None:
        print("no 'Overall exposure level' line in systemd-analyze's output", file=sys.stderr)
        return 2
    print(f"unit: {UNIT.name} (analysed as {INSTANCE})")
    print("still exposed (inherent to a network client unless noted in the unit):")
    for name, description, weight in failed_checks(table):
        print(f"  {weight:.1f}  {name}: {description}")
    verdict = "meets" if score <= args.goal else "MISSES"
    print(f"exposure: {score:.1f} (goal <= {args.goal:.1f}, {verdict} the goal)")
    return 0 if score <= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
