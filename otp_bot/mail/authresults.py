"""A small, fast reader for one Authentication-Results header value (RFC 8601).

Why not the ``authres`` package at run time: it spends about 340 µs on one
Gmail header (a regular-expression compile lookup per token), two thirds of
the whole per-message budget of bench/extract.py. This reader handles the
grammar's awkward parts (nested comments, quoted strings, CFWS around ``=``
and ``.``, a missing authserv-id as Microsoft 365 writes it) in a few regex
passes, and tests/test_extract_trust.py checks it against ``authres`` on every
header of the corpus and on Hypothesis-built ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A receiving server's own header is a few hundred bytes; anything far longer is
# either junk or an attempt to make the parser work hard.
MAX_CHARS = 4096
_MAX_RESULTS = 32

_QUOTED = r'"(?:[^"\\]|\\.)*"?'
# Outside a comment a quoted string may hold parentheses; inside one, a quote
# is an ordinary character (RFC 5322 ctext) and only a backslash escapes.
_OUTSIDE_RE = re.compile(rf'{_QUOTED}|\(|[^"(]+', re.DOTALL)
_INSIDE_RE = re.compile(r"\\.|[()]|[^()\\]+|\\", re.DOTALL)
_SEGMENT_WORDS_RE = re.compile(rf'{_QUOTED}|;|[^";]+', re.DOTALL)
_WORD = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_METHOD_RE = re.compile(rf"\s*({_WORD})(?:\s*/\s*\d+)?\s*=\s*({_WORD})\s*(.*)", re.DOTALL)
_PROP_RE = re.compile(rf'({_WORD})\s*\.\s*({_WORD})\s*=\s*({_QUOTED}|[^\s"]+)')
_REASON_RE = re.compile(rf'^reason\s*=\s*(?:{_QUOTED}|[^\s"]+)', re.IGNORECASE)
# Microsoft 365 starts with a result ("spf=pass ...") instead of an authserv-id.
_STARTS_WITH_RESULT_RE = re.compile(rf"\s*{_WORD}\s*(?:/\s*\d+\s*)?=")


@dataclass(frozen=True, slots=True)
class Result:
    """One resinfo: ``method=result`` and its ``ptype.property=value`` pairs."""

    method: str  # lower-cased, e.g. "dkim"
    result: str  # lower-cased, e.g. "pass"
    props: dict[str, str] = field(default_factory=dict)  # "header.d" -> "linkedin.com"


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header: its authserv-id ("" when missing) and results in order."""

    authserv_id: str
    results: tuple[Result, ...]


def parse(value: str) -> Header:
    """Parse one header value; unreadable resinfos are skipped, never raised."""
    segments = _split_semicolons(_strip_comments(value[:MAX_CHARS]))
    if _STARTS_WITH_RESULT_RE.match(segments[0]):
        server = ""
    else:
        server = (segments.pop(0).split() or [""])[0].lower()
    results = [r for r in map(_resinfo, segments[:_MAX_RESULTS]) if r is not None]
    return Header(server, tuple(results))


def _strip_comments(value: str) -> str:
    if "(" not in value:
        return value
    kept: list[str] = []
    depth = pos = 0
    while pos < len(value):
        piece = (_INSIDE_RE if depth else _OUTSIDE_RE).match(value, pos)
        if piece is None:  # unreachable: each pattern matches any first character
            break
        pos = piece.end()
        if piece.group() == "(":
            depth += 1
        elif piece.group() == ")":
            depth -= 1
            kept.append(" " if depth == 0 else "")
        elif depth == 0:
            kept.append(piece.group())
    return "".join(kept)


def _split_semicolons(value: str) -> list[str]:
    segments = [""]
    for piece in _SEGMENT_WORDS_RE.findall(value):
        if piece == ";":
            segments.append("")
        else:
            segments[-1] += piece
    return segments


def _resinfo(segment: str) -> Result | None:
    match = _METHOD_RE.fullmatch(segment)
    if match is None:
        return None
    method, result, rest = match.groups()
    rest = _REASON_RE.sub("", rest.strip())
    props = {
        f"{ptype}.{prop}".lower(): _unquote(value) for ptype, prop, value in _PROP_RE.findall(rest)
    }
    return Result(method.lower(), result.lower(), props)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
