"""Text from outside (e-mail, requests) made safe to print on a terminal.

Control characters (C0 such as ESC, CR and LF; DEL; C1 such as CSI) and the
invisible characters that reorder or hide text (BiDi overrides, isolates and
marks, zero-width characters, line and paragraph separators) are written as
escapes (``\\x1b``, ``\\u202e``): a crafted From header cannot move the cursor,
recolour the screen or draw a fake verdict over the real one.
"""

from __future__ import annotations

import json
import re
from typing import Any

_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 except tab and line feed, DEL, C1
_INVISIBLE = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"  # BiDi, zero-width, separators
_UNSAFE_RE = re.compile(f"[{_CONTROLS}{_INVISIBLE}]")
_UNSAFE_ONE_LINE_RE = re.compile(f"[{_CONTROLS}{_INVISIBLE}\t\n]")
# JSON escapes C0 itself; DEL, C1 and the invisible ones stay raw with ensure_ascii=False.
_JSON_UNSAFE_RE = re.compile(f"[\x7f-\x9f{_INVISIBLE}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` on one line: every control or invisible character escaped, tab and LF too."""
    return _UNSAFE_ONE_LINE_RE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """Like ``printable`` but keeps line feeds and tabs (a traceback, a multi-line message)."""
    return _UNSAFE_RE.sub(_escape, text)


def json_text(value: Any) -> str:
    """JSON with non-ASCII text kept readable, but no raw control or invisible character."""
    text = json.dumps(value, ensure_ascii=False)
    return _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
