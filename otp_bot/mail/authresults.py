"""A strict, linear reader for one Authentication-Results header value (RFC 8601).

Why not the ``authres`` package at run time: it spends about 340 µs on one
Gmail header (a regular-expression compile lookup per token), two thirds of
the whole per-message budget of bench/extract.py. tests/test_extract_trust.py
checks this reader against ``authres`` on every header of the corpus, on
Hypothesis-built ones and on the RFC 8601 Appendix B examples.

One pass turns the value into tokens (atoms, quoted strings, ``;`` ``=``
``/``), dropping comments; a second pass reads ``authserv-id`` and the
resinfos from them. Strictness where a wrong reading would decide trust:

- an unbalanced comment or quoted string, a stray ``)`` or backslash, a value
  longer than ``MAX_CHARS`` or comments nested deeper than ``MAX_NESTING``
  make the whole header unreadable (``Header.error``), never half-read;
- a ``"`` inside a comment is unreadable too: RFC 5322 says it is plain
  comment text, many parsers take it as a quoted string, and a server that
  copies a quoted MAIL FROM into its ``spf=`` comment lets the sender pick the
  reading (the quote closes the comment early for one parser and not the
  other, and the rest of the local part becomes results);
- a property given twice in one result (two ``header.d``) is unreadable;
- ``header.i="@linkedin.com"@evil.example`` keeps its quoted local part, so
  the domain after the last ``@`` is ``evil.example``, as RFC 5322 reads it.

Every pattern is possessive or a single character class: no backtracking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A receiving server's own header is a few hundred bytes; anything far longer is
# either junk or an attempt to make the parser work hard.
MAX_CHARS = 4096
MAX_NESTING = 4
_MAX_RESULTS = 32

_TOKEN_RE = re.compile(
    r"(?P<space>[ \t\r\n]++)"
    r'|(?P<atom>[^ \t\r\n()";=/\\]++)'
    r"|(?P<special>[;=/])"
    r'|(?P<quoted>"(?P<text>(?:[^"\\]++|\\.)*+)")'
    r"|(?P<other>.)",
    re.DOTALL,
)
_COMMENT_TEXT_RE = re.compile(r'[^()\\"]++')
_UNESCAPE_RE = re.compile(r"\\(.)")

ATOM, QUOTED, SPECIAL = "atom", "quoted", "special"


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit; ``glued``: no space or comment separates it from the previous one."""

    kind: str
    text: str  # a quoted string's content, unescaped
    glued: bool


@dataclass(frozen=True, slots=True)
class Result:
    """One resinfo: ``method=result`` and its ``ptype.property=value`` pairs."""

    method: str  # lower-cased, e.g. "dkim"
    result: str  # lower-cased, e.g. "pass"
    props: dict[str, str] = field(default_factory=dict)  # "header.d" -> "linkedin.com"


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header: its authserv-id ("" when missing) and results in order.

    ``error`` says why the value could not be read; its results are then empty.
    """

    authserv_id: str
    results: tuple[Result, ...]
    error: str | None = None


class Unreadable(ValueError):
    """The value breaks the grammar in a way that could change its meaning."""


def parse(value: str) -> Header:
    """Parse one header value; an unreadable value gives an empty ``Header`` with ``error``."""
    try:
        tokens = tokenize(value)
    except Unreadable as exc:
        return Header("", (), str(exc))
    segments = _split(tokens)
    first = segments[0]
    if _looks_like_result(first):  # Microsoft 365 starts with a result, no authserv-id
        server = ""
    else:
        segments.pop(0)
        server = first[0].text.lower() if first and first[0].kind != SPECIAL else ""
    try:
        results = [r for r in map(_resinfo, segments[:_MAX_RESULTS]) if r is not None]
    except Unreadable as exc:
        return Header(server, (), str(exc))
    return Header(server, tuple(results))


def tokenize(value: str) -> list[Token]:
    """The value's tokens without comments; raises ``Unreadable``."""
    if len(value) > MAX_CHARS:
        raise Unreadable(f"longer than {MAX_CHARS} characters")
    tokens: list[Token] = []
    pos, glued = 0, True
    while pos < len(value):
        match = _TOKEN_RE.match(value, pos)  # one call per token; "other" always matches
        assert match is not None  # noqa: S101 - the last alternative takes any character
        kind = match.lastgroup
        if kind == "space":
            pos, glued = match.end(), False
            continue
        if kind in {"atom", "special"}:
            tokens.append(Token(ATOM if kind == "atom" else SPECIAL, match.group(), glued))
        elif kind == "quoted":
            text = match.group("text")
            tokens.append(
                Token(QUOTED, _UNESCAPE_RE.sub(r"\1", text) if "\\" in text else text, glued)
            )
        elif match.group() == "(":
            pos, glued = _skip_comment(value, pos), False
            continue
        elif match.group() == '"':
            raise Unreadable("unterminated quoted string")
        else:  # ")" without "(" or a backslash outside a quoted string
            raise Unreadable(f"stray {match.group()!r}")
        pos, glued = match.end(), True
    return tokens


def _skip_comment(value: str, pos: int) -> int:
    """The position after the comment opening at ``pos``; nesting counted, quotes refused."""
    depth = 0
    while pos < len(value):
        char = value[pos]
        if char == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise Unreadable(f"comments nested deeper than {MAX_NESTING}")
            pos += 1
        elif char == ")":
            depth -= 1
            pos += 1
            if depth == 0:
                return pos
        elif char == "\\":
            pos += 2
        elif char == '"':
            raise Unreadable("a quote inside a comment (ambiguous)")
        else:
            text = _COMMENT_TEXT_RE.match(value, pos)
            pos = text.end() if text is not None else pos + 1
    raise Unreadable("unbalanced comment")


def _split(tokens: list[Token]) -> list[list[Token]]:
    segments: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == SPECIAL and token.text == ";":
            segments.append([])
        else:
            segments[-1].append(token)
    return segments


def _looks_like_result(segment: list[Token]) -> bool:
    """``method=`` or ``method/version=`` at the start of a segment."""
    kinds = [(t.kind, t.text) for t in segment[:4]]
    if len(kinds) >= 2 and kinds[0][0] == ATOM and kinds[1] == (SPECIAL, "="):
        return True
    return len(kinds) >= 4 and kinds[0][0] == ATOM and kinds[1] == (SPECIAL, "/")


def _resinfo(segment: list[Token]) -> Result | None:
    """``method[/version]=result`` then ``reason=...`` and ``ptype.property=value`` pairs."""
    if not _looks_like_result(segment):
        return None
    pos = 4 if segment[1].text == "/" else 2
    if pos >= len(segment) or segment[pos].kind != ATOM or segment[pos - 1].text != "=":
        return None
    method, result = segment[0].text.lower(), segment[pos].text.lower()
    return Result(method, result, _properties(segment[pos + 1 :]))


def _properties(tokens: list[Token]) -> dict[str, str]:
    props: dict[str, str] = {}
    key: list[str] = []
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token.kind == ATOM:
            # RFC 8601 allows CFWS around the "." of ptype.property only.
            if key and (key[-1].endswith(".") or token.text.startswith(".")):
                key.append(token.text)
            else:
                key = [token.text]
            pos += 1
        elif token.kind == SPECIAL and token.text == "=" and key:
            value, pos = _pvalue(tokens, pos + 1)
            name = "".join(key).lower()
            if "." in name and value is not None:  # "reason=" and "action=" are not properties
                if name in props:
                    raise Unreadable(f"repeated property {name}")
                props[name] = value
            key = []
        else:
            key = []
            pos += 1
    return props


def _pvalue(tokens: list[Token], pos: int) -> tuple[str | None, int]:
    """A value and the position after it: a token plus any tokens glued to it."""
    if pos >= len(tokens) or tokens[pos].kind == SPECIAL:
        return None, pos
    parts = [tokens[pos]]
    pos += 1
    while pos < len(tokens) and tokens[pos].glued and tokens[pos].kind != SPECIAL:
        parts.append(tokens[pos])
        pos += 1
    if len(parts) == 1:
        return parts[0].text, pos
    # A quoted local part: keep its quotes so "the domain after the last @" stays right.
    text = "".join(f'"{_requote(p.text)}"' if p.kind == QUOTED else p.text for p in parts)
    return text, pos


def _requote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def domain_of(identity: str) -> str:
    """The domain of ``[local-part]@domain`` (RFC 5322: after the last ``@`` outside quotes)."""
    if identity.endswith('"'):
        return ""  # the whole value is a quoted string: no domain part
    return identity.rpartition("@")[2]
