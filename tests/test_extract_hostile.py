"""Hostile input: always a value, never an exception, never the exception guard.

How long each hostile file takes is measured by ``bench/extract.py`` (the
slowest hostile file) and ``bench/fuzz_time.py`` (inputs aimed at time), in
one run each, never asserted here: a timing bound in a test fails on a busy
machine and passes a slow reader on a fast one. The daemon enforces its own
budget per message (``OTP_BOT_MAIL_CPU_BUDGET``, ``tests/test_reader.py``).
The exception guard in ``extract`` is a last line of defence: these tests fail
if it is ever reached.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otp_bot.mail.extract import Evidence, extract
from tests.emails.hostile import cases

HOSTILE = cases()


@pytest.mark.parametrize(("name", "raw", "code"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_file_yields_a_verdict(name: str, raw: bytes, code: str | None) -> None:
    """Each hostile shape yields the still-readable code (or nothing), without the guard."""
    evidence = extract(raw)
    assert not (evidence.reason or "").startswith("extract_failed"), evidence.reason
    assert evidence.code == code, name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=20_000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    """Random bytes give an Evidence without reaching the exception guard."""
    evidence = extract(raw)
    assert isinstance(evidence, Evidence)
    assert not (evidence.reason or "").startswith("extract_failed"), evidence.reason
    assert evidence.trusted is False or evidence.sender is not None


_CTYPES = [
    "text/plain",
    "text/html",
    "multipart/mixed",
    "multipart/alternative",
    "message/rfc822",
    "application/octet-stream",
    "text/x-weird",
    "multipart/",
]
_ENCODINGS = ["", "base64", "quoted-printable", "8bit", "x-uuencode", "BASE64 "]
_CHARSETS = ["utf-8", "iso-8859-1", "x-unknown", "utf-16", "", '"', "utf-7", "undefined", "rot13"]
_TEXT = st.text(
    alphabet=st.sampled_from([*"ab 0123456789<>/=&;:\r\n\t-código", "\x00", "é"]),
    max_size=300,
)


@st.composite
def mime_tree(draw: st.DrawFn, depth: int = 0) -> str:
    """A random, often malformed MIME entity (headers and body) as text."""
    ctype = draw(st.sampled_from(_CTYPES))
    charset = draw(st.sampled_from(_CHARSETS))
    encoding = draw(st.sampled_from(_ENCODINGS))
    boundary = draw(st.sampled_from(["b", "=_x", "", "--", "b b"]))
    head = f'Content-Type: {ctype}; charset="{charset}"; boundary="{boundary}"\r\n'
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\r\n"
    if ctype.startswith("multipart") and depth < 4:
        children = draw(st.lists(mime_tree(depth + 1), max_size=4))
        closing = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}"]))
        body = "".join(f"--{boundary}\r\n{child}\r\n" for child in children) + closing
    else:
        body = draw(_TEXT)
    return f"{head}\r\n{body}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=mime_tree(),
    sender=st.sampled_from(["LinkedIn <security-noreply@linkedin.com>", "x@evil.example", ""]),
    auth=st.sampled_from(["mx; dkim=pass header.d=linkedin.com", "(", "spf=pass;;;", ""]),
    cut=st.integers(min_value=0, max_value=100),
)
def test_random_mime_trees_never_raise(tree: str, sender: str, auth: str, cut: int) -> None:
    """Random, truncated MIME trees give an Evidence and never reach the guard."""
    raw = f"From: {sender}\r\nAuthentication-Results: {auth}\r\nSubject: code\r\n{tree}"
    data = raw.encode("utf-8", "surrogatepass")
    data = data[: max(1, len(data) * cut // 100)] if cut < 100 else data
    evidence = extract(data)
    assert not (evidence.reason or "").startswith("extract_failed"), evidence.reason
