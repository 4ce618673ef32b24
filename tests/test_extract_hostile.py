"""Hostile input: always a value, never an exception, always within 100 ms.

Timing on a noisy 2-core machine, made robust three ways: the bound is
checked on CPU time of this thread (``time.thread_time``), which other
processes competing for the cores do not inflate; on the *fastest* of
several runs (noise only ever adds time); and the worst hostile file costs
about 35 ms, a 3x margin under the 100 ms the issue asks for. Wall-clock
time is checked too, with a 10x margin, so a sleep or a lock wait would
still fail. The exception guard in ``extract`` is a last line of defence:
these tests fail if it is ever reached.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otp_bot.mail.extract import Evidence, extract
from tests.emails.hostile import cases

BOUND_SECONDS = 0.100
WALL_BOUND_SECONDS = 10 * BOUND_SECONDS
RUNS = 5


def _fastest_run(raw: bytes) -> tuple[Evidence, float, float]:
    """The evidence, and the best CPU and wall-clock seconds over RUNS runs."""
    cpu = wall = float("inf")
    evidence = extract(raw)
    for _ in range(RUNS):
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        evidence = extract(raw)
        cpu = min(cpu, time.thread_time() - cpu_start)
        wall = min(wall, time.perf_counter() - wall_start)
    return evidence, cpu, wall


HOSTILE = cases()


@pytest.mark.parametrize(("name", "raw", "code"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_file_is_read_quickly(name: str, raw: bytes, code: str | None) -> None:
    """Each hostile shape yields the still-readable code (or nothing) within 100 ms."""
    evidence, cpu, wall = _fastest_run(raw)
    assert not (evidence.reason or "").startswith("extract_failed"), evidence.reason
    assert evidence.code == code, name
    assert cpu < BOUND_SECONDS, f"{name}: {cpu * 1000:.1f} ms of CPU"
    assert wall < WALL_BOUND_SECONDS, f"{name}: {wall * 1000:.1f} ms on the clock"


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
    """Random, truncated MIME trees give an Evidence quickly and never reach the guard."""
    raw = f"From: {sender}\r\nAuthentication-Results: {auth}\r\nSubject: code\r\n{tree}"
    data = raw.encode("utf-8", "surrogatepass")
    data = data[: max(1, len(data) * cut // 100)] if cut < 100 else data
    evidence, cpu, wall = _fastest_run(data)
    assert not (evidence.reason or "").startswith("extract_failed"), evidence.reason
    assert cpu < BOUND_SECONDS
    assert wall < WALL_BOUND_SECONDS
