"""`otp-bot extract FILE.eml [--json]` as the design fixes it, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EMAILS = ROOT / "tests" / "emails"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otp_bot", "extract", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_json_is_one_object_with_the_design_fields() -> None:
    """--json prints exactly one JSON object with trusted, code, link, sender, reason; exit 0."""
    done = _run(str(EMAILS / "en_confirm_pin_and_link.eml"), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    got = json.loads(done.stdout)
    assert got["trusted"] is True
    assert got["code"] == "381920"
    assert got["link"].startswith("https://www.linkedin.com/comm/psettings/email/confirm?")
    assert got["sender"] == "security-noreply@linkedin.com"
    assert got["reason"] is None
    assert got["received_at"] == "2026-11-28T17:14:03+00:00"


@pytest.mark.parametrize("name", ["spoof_display_name", "hostile_random_bytes", "hostile_empty"])
def test_untrusted_or_garbage_still_exits_zero(name: str) -> None:
    """Whatever the file holds, a readable file gives exit 0 and a reason."""
    done = _run(str(EMAILS / f"{name}.eml"), "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["trusted"] is False
    assert got["code"] is None
    assert got["reason"]


def test_trusted_authserv_id_option() -> None:
    """--trusted-authserv-id picks the lower header from that server."""
    path = str(EMAILS / "trusted_authserv_id_lower_header.eml")
    assert json.loads(_run(path, "--json").stdout)["trusted"] is False
    with_id = json.loads(_run(path, "--json", "--trusted-authserv-id", "mx.example.org").stdout)
    assert (with_id["trusted"], with_id["code"]) == (True, "665201")


def test_summary_for_people() -> None:
    """Without --json a short readable summary shows sender, verdict, code and link."""
    done = _run(str(EMAILS / "en_pin_subject_gmail.eml"))
    assert done.returncode == 0, done.stderr
    assert "security-noreply@linkedin.com (trusted)" in done.stdout
    assert "042917" in done.stdout
    assert not done.stdout.lstrip().startswith("{")


def test_missing_file_fails_with_message(tmp_path: Path) -> None:
    """An unreadable file exits non-zero with the reason on stderr and nothing on stdout."""
    done = _run(str(tmp_path / "nope.eml"), "--json")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "cannot read" in done.stderr
