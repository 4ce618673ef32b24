"""Fuzz the e-mail reader: Hypothesis-generated MIME, 100,000 inputs by default.

Beyond the unit test's random trees, inputs here are (a) generated MIME trees
with encoded-word headers, Authentication-Results variants, HTML with nested
tags and split digits, base64/quoted-printable bodies (valid and broken),
message/rfc822 attachments and deep nesting; and (b) byte-level mutations
(flips, cuts, splices, duplications) of the golden corpus in tests/emails.

It prints how many inputs ran, how many raised (must be 0), the slowest call,
and how many calls took over 100 ms. A call that is slow the first time is
timed again (best of 3) so that a garbage-collector pause or a noisy
neighbour is told apart from a really slow input; both figures are printed.

    .venv/bin/python bench/fuzz_extract.py [--examples 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import quopri
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otp_bot.mail.extract import extract  # noqa: E402

LIMIT_S = 0.100
CORPUS = [p.read_bytes() for p in sorted((ROOT / "tests" / "emails").glob("*.eml"))]

_WORDS = [
    "verification", "code", "código", "Bestätigungscode", "verificatiecode", "codice",
    "PIN", "confirm", "2026", "10:45", "+1 (555) 010-9999", "75008", "$49.99", "123456",
    "0042", "12 34 56", "https://www.linkedin.com/psettings/email/confirm?token=AbC&amp;x=1",
    "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.linkedin.com%2Fx",
    "&#49;&#50;", "=\r\n", "\x00", "\ufeff", "é", "ñ", "ß",
]  # fmt: skip
_CTYPES = [
    "text/plain", "text/html", "multipart/alternative", "multipart/mixed",
    "multipart/related", "message/rfc822", "application/octet-stream", "text/x-weird", "",
]  # fmt: skip
_CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "utf-16", "x-unknown-42", "", '"utf-8"']
_AUTH = [
    "mx.example.test; dkim=pass header.d=linkedin.com; dmarc=pass header.from=linkedin.com",
    "mx.google.com; dkim=pass header.i=@linkedin.com header.s=s1; spf=pass",
    "spoof.example; dkim=pass header.d=linkedin.com",
    "mx; dmarc=fail header.from=linkedin.com",
    "(comment (nested) \"q\") mx; dkim=pass (x) header.d=linkedin.com.evil.example",
    ";;;", "", "mx; none",
]  # fmt: skip
_FROM = [
    "LinkedIn <security-noreply@linkedin.com>", "\"LinkedIn Security\" <a@elsewhere.example>",
    "x@linkedln.com", "y@linkedin.com.example.net", "z@xn--linkedn-c4a.com",
    "=?utf-8?b?TGlua2VkSW4=?= <jobs-noreply@linkedin.com>", "<>", "",
]  # fmt: skip

text = st.lists(st.sampled_from(_WORDS) | st.text(max_size=30), max_size=25).map(" ".join)


@st.composite
def html(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 6 or draw(st.booleans()):
        return draw(text)
    tag = draw(st.sampled_from(["td", "span", "b", "div", "p", "a", "br", "style", "script"]))
    inner = "".join(draw(st.lists(html(depth + 1), max_size=4)))
    attrs = draw(st.sampled_from(["", ' href="https://www.linkedin.com/comm/x?trk=verification"']))
    repeat = draw(st.integers(min_value=1, max_value=3))
    return f"<{tag}{attrs}>{inner}</{tag}>" * repeat


def encode(body: str, charset: str, cte: str, broken: bool) -> str:
    try:
        data = body.encode(charset or "utf-8", "replace")
    except LookupError:
        data = body.encode("utf-8", "replace")
    if cte == "base64":
        encoded = base64.encodebytes(data).decode()
        return encoded[: len(encoded) // 2] + "!!*" if broken else encoded
    if cte == "quoted-printable":
        encoded = quopri.encodestring(data).decode("ascii", "replace")
        return encoded + "=Z" if broken else encoded
    return data.decode("latin-1")


@st.composite
def part(draw: st.DrawFn, depth: int = 0) -> str:
    ctype = draw(st.sampled_from(_CTYPES))
    charset = draw(st.sampled_from(_CHARSETS))
    cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-bogus", ""]))
    boundary = draw(st.sampled_from(["b1", "=_p", "", "x" * 80, "b b"]))
    head = f'Content-Type: {ctype}; charset={charset}; boundary="{boundary}"\r\n'
    head += f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    if ctype.startswith("multipart/") and depth < 40:
        children = draw(st.lists(part(depth + 1), max_size=3))
        closing = draw(st.sampled_from([f"--{boundary}--\r\n", ""]))
        return head + "".join(f"--{boundary}\r\n{c}\r\n" for c in children) + closing
    if ctype == "message/rfc822" and depth < 40:
        return head + draw(message(depth + 1))
    body = draw(html()) if ctype == "text/html" else draw(text)
    return head + encode(body, charset, cte, draw(st.booleans()))


@st.composite
def message(draw: st.DrawFn, depth: int = 0) -> str:
    auths = draw(st.lists(st.sampled_from(_AUTH), max_size=3))
    headers = "".join(f"Authentication-Results: {a}\r\n" for a in auths)
    headers += f"From: {draw(st.sampled_from(_FROM))}\r\n"
    subject = draw(text)
    if draw(st.booleans()):
        subject = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
    headers += f"Subject: {subject}\r\nMessage-ID: <{draw(st.integers())}@linkedin.com>\r\n"
    headers += f"Date: {draw(st.sampled_from(['Sat, 28 Nov 2026 10:00:00 +0000', 'junk', '']))}\r\n"
    return headers + "MIME-Version: 1.0\r\n" + draw(part(depth))


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if not raw:
            break
        at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        op = draw(st.sampled_from(["flip", "cut", "dup", "splice", "insert"]))
        if op == "flip":
            raw[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "cut":
            del raw[at : at + draw(st.integers(min_value=1, max_value=400))]
        elif op == "dup":
            raw[at:at] = raw[at : at + draw(st.integers(min_value=1, max_value=2000))]
        elif op == "splice":
            other = draw(st.sampled_from(CORPUS))
            raw[at:] = other[draw(st.integers(min_value=0, max_value=len(other))) :]
        else:
            raw[at:at] = draw(st.binary(max_size=64))
    return bytes(raw)


inputs = st.one_of(message().map(lambda m: m.encode("utf-8", "surrogateescape")), mutated_corpus())


class Tally:
    def __init__(self) -> None:
        self.count = 0
        self.errors: list[str] = []
        self.slowest = 0.0
        self.over_first: list[bytes] = []

    def run(self, raw: bytes) -> None:
        self.count += 1
        start = time.perf_counter()
        try:
            evidence = extract(raw)
        except Exception:  # noqa: BLE001 - the point is to count every exception
            self.errors.append(traceback.format_exc(limit=3))
            return
        # extract() ends in a last-resort catch: reaching it counts as a failure.
        if evidence.reason and evidence.reason.startswith("extract_failed"):
            self.errors.append(f"{evidence.reason}: {raw[:200]!r}")
        took = time.perf_counter() - start
        self.slowest = max(self.slowest, took)
        if took > LIMIT_S:
            self.over_first.append(raw)


def best_of(raw: bytes, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        extract(raw)
        times.append(time.perf_counter() - start)
    return min(times)


def fuzz_share(job: tuple[int, int]) -> tuple[int, list[str], float, list[bytes]]:
    """One worker's share: ``examples`` inputs from its own seed."""
    examples, worker_seed = job
    tally = Tally()

    @seed(worker_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def fuzz(raw: bytes) -> None:
        tally.run(raw)

    fuzz()
    return tally.count, tally.errors, tally.slowest, tally.over_first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    started = time.perf_counter()
    share = -(-args.examples // args.workers)
    jobs = [(share, args.seed * 1000 + n) for n in range(args.workers)]
    with multiprocessing.Pool(args.workers) as pool:
        results = pool.map(fuzz_share, jobs)
    tally = Tally()
    for count, errors, slowest, over in results:
        tally.count += count
        tally.errors += errors
        tally.slowest = max(tally.slowest, slowest)
        tally.over_first += over
    elapsed = time.perf_counter() - started
    retimed = [best_of(raw) for raw in tally.over_first]
    really_slow = [t for t in retimed if t > LIMIT_S]
    print(f"inputs run:               {tally.count}")
    print(f"exceptions/failures:      {len(tally.errors)}")
    print(f"slowest call (first run): {tally.slowest * 1000:.1f} ms")
    print(f"over 100 ms, first run:   {len(tally.over_first)}")
    print(f"over 100 ms, best of 3:   {len(really_slow)}")
    if retimed:
        print(f"slowest re-timed:         {max(retimed) * 1000:.1f} ms")
    print(f"wall time:                {elapsed:.0f} s ({tally.count / elapsed:.0f} inputs/s)")
    for error in tally.errors[:3]:
        print(error)
    return 1 if tally.errors or really_slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
