"""Flatten an HTML body to text and links, in time linear in its size.

Block elements (cells, rows, paragraphs, line breaks, ...) become line
breaks, so numbers from neighbouring cells never run together; inline
elements (``span``, ``b``, ``font``, ``a``) vanish, so a code that LinkedIn
splits across spans is read whole. Comments, ``style`` and ``script`` are
dropped.

This is a handful of C-speed regular-expression passes rather than
``html.parser``: the parser costs about 10 times more per tag, which on
200,000 nested tags alone would blow the 100 ms budget. Every pattern here
stops at the next ``<`` or ``>``, so no input makes them backtrack across
the document.
"""

from __future__ import annotations

import html
import re

# LinkedIn's HTML bodies are under 100 KB; flattening costs time in proportion.
MAX_HTML_CHARS = 128 * 1024
MAX_TEXT_CHARS = 64 * 1024

_BLOCK_NAMES = [
    *("address", "article", "aside", "blockquote", "br", "center", "dd", "div", "dl", "dt"),
    *("footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre"),
    *("section", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul"),
]


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in word)


def _names_pattern(names: list[str]) -> str:
    """Names grouped by first letter, in explicit [aA] classes: a tag that is none of
    them fails after one test per letter, and no case-folding slows each test."""
    firsts = sorted({name[0] for name in names})
    groups = []
    for first in firsts:
        rests = sorted((n[1:] for n in names if n[0] == first), key=len, reverse=True)
        groups.append(f"{_any_case(first)}(?:{'|'.join(map(_any_case, rests))})")
    return "|".join(groups)


_BLOCK_RE = re.compile(rf"<\s*+/?+\s*+(?=[a-zA-Z])(?:{_names_pattern(_BLOCK_NAMES)})\b[^<>]*+>")
_TAG_RE = re.compile(r"<[/!?]?+[a-zA-Z][^<>]*+>")
_HREF_RE = re.compile(
    r"""<a\s[^<>]*?\bhref\s*+=\s*+(?:"([^"<>]*+)"|'([^'<>]*+)'|([^\s"'<>]++))""", re.IGNORECASE
)
_RAW_TEXT_OPEN_RE = re.compile(r"<(style|script|head)\b", re.IGNORECASE)
# Invisible characters that would split a code or hide inside one.
# A regex, not str.translate: translate looks every character up in a dict,
# about 100 ns each; the regex skips to the next match at C speed.
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]++")
_HORIZONTAL_SPACE_RE = re.compile(r"[ \t\r\f\v\u00a0]++")
# Whitespace holding a line break, matched from the start of its run only (the
# lookbehind): "\s*\n\s*" would rescan a long run of spaces from each of them.
_BLANK_LINES_RE = re.compile(r"(?<![^\S\n])[^\S\n]*+\n\s*+")


def flatten_html(markup: str) -> tuple[str, list[str]]:
    """Return (visible text with block breaks as newlines, hrefs of links in order)."""
    markup = _drop_raw_text(_drop_comments(markup[:MAX_HTML_CHARS]))
    hrefs = [html.unescape(a or b or c).strip() for a, b, c in _HREF_RE.findall(markup)]
    # Only the first MAX_TEXT_CHARS of text are unescaped and tidied: the reader
    # searches no further (extract's text budget), and a flood of entities costs
    # a Python call each in html.unescape.
    text = _TAG_RE.sub("", _BLOCK_RE.sub("\n", markup))[:MAX_TEXT_CHARS]
    return tidy_text(html.unescape(text)), hrefs


def tidy_text(text: str) -> str:
    """Drop invisible characters and collapse runs of spaces and blank lines."""
    text = _HORIZONTAL_SPACE_RE.sub(" ", _INVISIBLE_RE.sub("", text))
    return _BLANK_LINES_RE.sub("\n", text).strip()


def _drop_comments(markup: str) -> str:
    # str.find, not a regex: an unclosed "<!--" repeated many times stays linear.
    if "<!--" not in markup:
        return markup
    kept: list[str] = []
    pos = 0
    while (start := markup.find("<!--", pos)) != -1:
        kept.append(markup[pos:start])
        end = markup.find("-->", start + 4)
        if end == -1:
            return "".join(kept)
        pos = end + 3
    kept.append(markup[pos:])
    return "".join(kept)


def _drop_raw_text(markup: str) -> str:
    kept: list[str] = []
    pos = 0
    while match := _RAW_TEXT_OPEN_RE.search(markup, pos):
        kept.append(markup[pos : match.start()])
        close_re = re.compile(rf"</\s*+{match.group(1)}\s*+>", re.IGNORECASE)
        close = close_re.search(markup, match.end())
        if close is None:
            return "".join(kept)
        pos = close.end()
    kept.append(markup[pos:])
    return "".join(kept)
