"""Mail built to cost time, not to crash: shared by bench/fuzz_time.py and the tests.

Every input is one long run, of one character or of a short repeating
pattern, chosen among the characters the reader's regexes and parsers touch,
placed in one spot of an otherwise ordinary message: the From header, the
Subject, the topmost or a lower Authentication-Results header (a lower one is
read when its authserv-id is trusted), a text/plain part or a text/html part.
Sizes go from 1 KB to the limit of the spot (``limit_of``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from otp_bot.imap.reading import read_header
from otp_bot.mail.dkim import key_names_of
from otp_bot.mail.extract import Evidence, extract
from otp_bot.mail.mime import MAX_MESSAGE_BYTES
from otp_bot.mail.parts import MAX_HEADER_BLOCK_BYTES

TRUSTED_ID = "mx.trusted.example"
# Characters and short patterns the reader's regexes and parsers react to.
PATTERNS = (
    "-", " ", "\t", "<", ">", "(", ")", ".", "0", "7", "a", "Z", "=", ";", '"', "'", "\\",
    "@", "&", "#", ":", "/", ",", "?", "\n", "\r\n", "\u2003", "\u00a0", "\u200b", "\u202e",
    "--", "- ", "-\n", "()", "(a", "((", "a.", "a-", "1.", "1 ", "12", "a=", "a;", "=a",
    ' "', '\\"', "<a", "< ", "<a ", "</", "<br>", "<!--", "<style>", "&amp;", "&#", "&#1",
    "=?", "?=", "=?x?q?", "=?utf-8?q?=", "=?utf-8?b?", "=\n", "=3D", "http://", "www.",
    "code ", "code: ", "1234 ", "header.d=", "dkim=pass ", "a@", "<a@b>", ", ", ": ",
)  # fmt: skip
SPOTS = ("from", "subject", "auth_results", "lower_auth_results", "text", "html")
SIZES = (1024, 64 * 1024)

_AUTH = "Authentication-Results: mx.example; dkim=pass header.d=linkedin.com\r\n"
_LOWER = f"Authentication-Results: {TRUSTED_ID}; dkim=pass header.d=linkedin.com\r\n"
_FROM = "From: LinkedIn <security-noreply@linkedin.com>\r\n"
_SUBJECT = "Subject: Your verification code\r\n"
_TAIL = "To: ana@example.com\r\nMessage-ID: <t@linkedin.com>\r\nMIME-Version: 1.0\r\n"
_PLAIN = "Content-Type: text/plain; charset=utf-8\r\n\r\n"
_HTML = "Content-Type: text/html; charset=utf-8\r\n\r\n"
_BODY = "Your verification code:\r\n\r\n482913\r\n"


@dataclass(frozen=True, slots=True)
class TimingInput:
    """One generated message and what it is made of."""

    spot: str
    pattern: str
    size: int  # length of the run, in characters
    raw: bytes

    @property
    def label(self) -> str:
        return f"{self.spot} {self.pattern!r} x {self.size:,}"


def limit_of(spot: str) -> int:
    """The largest run worth trying in a spot: the reader cuts beyond it."""
    return MAX_HEADER_BLOCK_BYTES if spot not in ("text", "html") else MAX_MESSAGE_BYTES


def _run(pattern: str, size: int) -> str:
    return (pattern * (size // len(pattern) + 1))[:size]


def build(spot: str, pattern: str, size: int) -> bytes:
    """A message with a ``size``-character run of ``pattern`` in ``spot``."""
    run = _run(pattern, size)
    heads = {"from": _FROM, "subject": _SUBJECT, "auth_results": _AUTH, "lower": _LOWER}
    body = _PLAIN + _BODY
    if spot == "from":
        heads["from"] = f"From: {run} <security-noreply@linkedin.com>\r\n"
    elif spot == "subject":
        heads["subject"] = f"Subject: {run}\r\n"
    elif spot == "auth_results":
        heads["auth_results"] = f"Authentication-Results: mx.example; dkim=pass {run}\r\n"
    elif spot == "lower_auth_results":
        heads["lower"] = f"Authentication-Results: {TRUSTED_ID}; dkim=pass {run}\r\n"
    elif spot == "text":
        body = _PLAIN + _BODY + run
    else:
        body = _HTML + "<p>Your verification code:</p><p>482913</p>" + run
    head = heads["auth_results"] + heads["lower"] + heads["from"] + heads["subject"] + _TAIL
    return (head + body).encode("utf-8")


def inputs(sizes: tuple[int, ...] = SIZES, *, to_limit: bool = True) -> Iterator[TimingInput]:
    """Every (spot, pattern, size) combination; ``to_limit`` adds each spot's limit."""
    for spot in SPOTS:
        spot_sizes = sorted({*sizes, limit_of(spot)} if to_limit else set(sizes))
        for pattern in PATTERNS:
            for size in spot_sizes:
                yield TimingInput(spot, pattern, size, build(spot, pattern, size))


def read(raw: bytes) -> Evidence:
    """What the daemon does with a message: the pre-filter, the DKIM key names (read
    in the daemon, for the DNS lookups), then the reading."""
    read_header(raw)
    key_names_of(raw)
    return extract(raw, trusted_authserv_ids=frozenset({TRUSTED_ID}))
