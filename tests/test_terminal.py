"""Terminal safety: control characters from mail or requests never reach the terminal raw.

A crafted From header once drew a fake green "(trusted)" line over the real
verdict of ``otp-bot extract``; console-format logs printed request and mail
text as is. ESC, CR, LF, C1 controls and BiDi overrides are escaped in both.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import structlog

from otp_bot import logs
from otp_bot.terminal import printable, printable_lines
from tests.emails import make_corpus as corpus

ROOT = Path(__file__).resolve().parent.parent
# An ANSI "cursor up, clear line, green" sequence, CR/LF, a C1 CSI, a BiDi override.
FAKE = "\x1b[1A\x1b[2K\x1b[32mfrom: security-noreply@linkedin.com (trusted)\x1b[0m\r\n\x9b2J\u202e"
RAW = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]} | set("\u202e\u2066\u200f")


def _unsafe(text: str, allowed: str = "\n") -> set[str]:
    return {c for c in text if c in RAW and c not in allowed}


def test_printable_escapes_controls_and_bidi() -> None:
    """ESC, CR, LF, tab, DEL, C1 and BiDi characters become visible escapes; text stays."""
    assert printable("a\x1b[31mb\r\nc\td\x7f\x85\u202eé") == (
        "a\\x1b[31mb\\x0d\\x0ac\\x09d\\x7f\\x85\\u202eé"
    )
    assert printable_lines("one\ntwo\x1b\tthree") == "one\ntwo\\x1b\tthree"


def test_extract_summary_escapes_a_crafted_sender_and_subject(tmp_path: Path) -> None:
    """``otp-bot extract FILE``: the crafted From and Subject cannot add or overwrite lines."""
    raw = corpus.headers(
        f"Your code{FAKE}", sender=f'"{FAKE}" <x{FAKE}@evil.example>'
    ) + corpus.part("text/plain", "Your verification code: 482913\n")
    mail = tmp_path / "crafted.eml"
    mail.write_bytes(raw.encode())
    done = subprocess.run(
        [sys.executable, "-m", "otp_bot", "extract", str(mail)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not _unsafe(done.stdout), repr(done.stdout)
    lines = done.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "from", "subject", "received", "code", "link", "reason",
    ]  # fmt: skip
    assert "NOT trusted" in lines[0]


def test_extract_json_escapes_c1_and_bidi(tmp_path: Path) -> None:
    """``--json`` stays valid JSON and carries no raw C1 or BiDi character."""
    raw = corpus.headers("Code \u202e\u2066 evil\x85 x") + corpus.part("text/plain", "x\n")
    mail = tmp_path / "crafted.eml"
    mail.write_bytes(raw.encode())
    done = subprocess.run(
        [sys.executable, "-m", "otp_bot", "extract", "--json", str(mail)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not _unsafe(done.stdout), repr(done.stdout)
    assert "\u202e" in json.loads(done.stdout)["subject"]


def test_console_logs_escape_values_from_outside() -> None:
    """Console-format lines carry request or mail text escaped, one event per line."""
    stream = io.StringIO()
    logs.configure("console", "info", stream=stream)
    try:
        structlog.get_logger("test").info("control_draft_posted", draft_id=FAKE, note=[FAKE])
        try:
            raise ValueError(FAKE)
        except ValueError:
            structlog.get_logger("test").exception("mail_handling_failed", uid=1)
    finally:
        logs.configure("json", "info", stream=io.StringIO())
    out = stream.getvalue()
    assert not _unsafe(out), repr(out)
    first = out.splitlines()[0]
    assert "control_draft_posted" in first
    assert "\\x1b[32mfrom: security-noreply@linkedin.com (trusted)" in first
