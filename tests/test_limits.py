"""File descriptor limits: the daemon raises its soft limit, or refuses to start, at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from otp_bot.daemon.limits import fds_needed

RUN = """
import resource, sys
from otp_bot.daemon.limits import ensure_fds
from otp_bot.errors import ConfigError
soft, hard = {soft}, {hard}
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # lowering needs no privilege
try:
    print(ensure_fds({needed}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
except ConfigError as exc:
    print("refused:", exc)
"""


def in_child(soft: int, hard: int, needed: int) -> str:
    code = RUN.format(soft=soft, hard=hard, needed=needed)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip().splitlines()[-1]  # after the log line, if any


def test_thousand_accounts_fit_the_units_limit() -> None:
    """1,000 accounts need far fewer descriptors than the unit's LimitNOFILE=65536."""
    assert fds_needed(1000, 1, 1) < 65536
    assert fds_needed(1000, 1, 1) > 2000  # two per account, at least
    unit = Path(__file__).parent.parent / "deploy" / "systemd" / "otp-bot@.service"
    assert "LimitNOFILE=65536" in unit.read_text()


def test_soft_limit_raised_up_to_the_hard_limit() -> None:
    """Soft 256 is raised to the hard 4096 when 3,000 are needed."""
    assert in_child(256, 4096, 3000) == "4096 4096"


def test_enough_already_is_left_alone() -> None:
    """A soft limit that covers the need is not touched."""
    assert in_child(2048, 4096, 1000) == "2048 2048"


def test_too_low_hard_limit_refuses_with_a_clear_message() -> None:
    """Hard limit 1,024 for a need of 3,000: refused, naming LimitNOFILE and the numbers."""
    out = in_child(512, 1024, 3000)
    assert out.startswith("refused: this daemon needs about 3000 file descriptors")
    assert "only 512 (hard limit 1024)" in out
    assert "LimitNOFILE=65536" in out
