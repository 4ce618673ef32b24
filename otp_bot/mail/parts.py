"""Split a message into its MIME parts and undo transfer encodings, within bounds.

The stdlib parser reads headers (``BytesHeaderParser`` on the header block
alone); bodies are split on their boundaries with ``bytes.find`` instead of
the stdlib's line-by-line feed parser, which spends about 0.3 ms on a 30 KB
LinkedIn mail, most of the per-message budget (bench/extract.py). Bounds: at
most ``MAX_PARTS`` parts, ``MAX_DEPTH`` levels, ``MAX_PART_BYTES`` per text
part after decoding. Broken structure degrades gracefully: a missing closing
boundary ends the last part at the end of the data, broken base64 decodes
what it can. tests/test_mime_crosscheck.py checks the parts and their decoded
text against the stdlib's parser, on the golden corpus and on generated MIME.
"""

from __future__ import annotations

import binascii
import codecs
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import Compat32

# LinkedIn nests three levels at most (mixed > alternative > text).
MAX_DEPTH = 8
MAX_PARTS = 64
# Enough for any LinkedIn HTML body; the rest of a giant part is never read.
MAX_PART_BYTES = 256 * 1024
# LinkedIn's header block, with a receiving server's trace and ARC headers, is
# under 16 KB; header parsing costs about 2 µs a line, so a flood is cut short.
MAX_HEADER_BLOCK_BYTES = 32 * 1024
_MAX_DELIMITER_PROBES = 4 * MAX_PARTS
_NOT_BASE64_RE = re.compile(rb"[^A-Za-z0-9+/]")
# The end of the header block: an empty line, or the very start for no headers.
_BLANK_LINE_RE = re.compile(rb"(?:\A|\n)\r?\n")
# Charsets mail is written in (Python's canonical codec names, as
# ``codecs.lookup(name).name`` gives them); every one decodes in linear time.
ORDINARY_CHARSETS = frozenset(
    {
        "utf-8", "utf-8-sig", "ascii", "utf-16", "utf-16-le", "utf-16-be",
        *(f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
        *(f"cp{n}" for n in (437, 850, 852, 866, 874, 932, 949, 950, 1250, 1251, 1252)),
        *(f"cp{n}" for n in (1253, 1254, 1255, 1256, 1257, 1258)),
        "koi8-r", "koi8-u", "mac-roman", "tis-620", "gb2312", "gbk", "gb18030", "big5",
        "big5hkscs", "shift_jis", "euc_jp", "iso2022_jp", "euc_kr", "iso2022_kr",
    }
)  # fmt: skip
_CHARSET_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,40}")


class _Utf8Headers(Compat32):
    """compat32, but raw 8-bit header bytes are read as UTF-8 (what senders mean today)
    instead of becoming U+FFFD, so a homoglyph domain shows as itself."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        raw = value.encode("ascii", "surrogateescape")
        return raw.decode("utf-8", "replace")


_POLICY = _Utf8Headers()


@dataclass(slots=True)
class Bodies:
    """The readable text of a message, in MIME order."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attached_message: bool = False  # a message/rfc822 part: a forward as attachment


def split_head(raw: bytes) -> tuple[Message, bytes]:
    """Parse the header block; return the headers and the undecoded body."""
    blank = _BLANK_LINE_RE.search(raw)
    if blank is None:
        cut = body_start = len(raw)
    else:  # a match at 0 is the "no headers" branch; else keep the header's own "\n"
        cut, body_start = (blank.start() + 1 if blank.start() else 0), blank.end()
    if cut == 0:
        return Message(policy=_POLICY), raw[body_start:]
    head = raw[: min(cut, MAX_HEADER_BLOCK_BYTES)]
    return BytesHeaderParser(policy=_POLICY).parsebytes(head), raw[body_start:]


def collect_bodies(headers: Message, body: bytes) -> Bodies:
    """Walk the MIME tree depth-first (MIME order) within the bounds, decoding text parts.

    A subpart's headers are parsed only when it is visited, so a wide tree
    costs MAX_PARTS header parses at most. tests/test_mime_crosscheck.py checks
    the walk against the stdlib's parser.
    """
    found = Bodies()
    stack: list[tuple[bytes, int]] = []
    _visit(headers, body, 0, found, stack)
    for _ in range(MAX_PARTS - 1):
        if not stack:
            break
        raw, depth = stack.pop()
        sub_headers, sub_body = split_head(raw)
        _visit(sub_headers, sub_body, depth, found, stack)
    return found


def _visit(
    part: Message, data: bytes, depth: int, found: Bodies, stack: list[tuple[bytes, int]]
) -> None:
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/global"):
        found.attached_message = True
    elif ctype.startswith("multipart/"):
        boundary = part.get_boundary()
        if boundary and depth < MAX_DEPTH:
            closing = boundary.encode("utf-8", "replace")
            subparts = split_multipart(data, closing, outermost=depth == 0)
            stack.extend((sub, depth + 1) for sub in reversed(subparts))
    elif ctype in ("text/plain", "text/html") and not _is_attachment(part):
        target = found.plain if ctype == "text/plain" else found.html
        target.append(_part_text(part, data, flowed=ctype == "text/plain"))


def split_multipart(body: bytes, boundary: bytes, *, outermost: bool = False) -> list[bytes]:
    """The parts between ``--boundary`` lines; an unclosed last part runs to the end.

    The line break before a delimiter belongs to it. When the message's own
    end closes an unclosed last part (``outermost``: the top multipart), it
    takes that part's one line break, as the stdlib's parser reads it; a nested
    multipart's data already lost it to whatever closed its parent.
    """
    delimiter = b"--" + boundary
    parts: list[bytes] = []
    start: int | None = None
    pos = 0
    for _ in range(_MAX_DELIMITER_PROBES):
        at = body.find(delimiter, pos)
        if at == -1 or len(parts) >= MAX_PARTS:
            break
        eol = body.find(b"\n", at)
        line_end = len(body) if eol == -1 else eol + 1
        tail = body[at + len(delimiter) : line_end].strip()
        pos = at + 1
        if (at > 0 and body[at - 1] != ord("\n")) or tail not in (b"", b"--"):
            continue  # the boundary text inside a line, or a longer boundary
        if start is not None:
            parts.append(_drop_line_break(body[start:at]))
        if tail == b"--":
            return parts
        start = pos = line_end
    if start is not None and len(parts) < MAX_PARTS:
        rest = body[start:]
        parts.append(_drop_line_break(rest) if outermost else rest)
    return parts


def _drop_line_break(data: bytes) -> bytes:
    # The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", ""))
    return disposition.strip().lower().startswith("attachment")


def _part_text(part: Message, data: bytes, *, flowed: bool) -> str:
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    decoded = transfer_decode(data[: 2 * MAX_PART_BYTES], encoding)[:MAX_PART_BYTES]
    text = decode_bytes(decoded, _charset(part))
    if flowed and str(part.get_param("format", "")).lower() == "flowed":
        delsp = str(part.get_param("delsp", "")).lower() == "yes"
        text = unflow(text, delsp=delsp)
    return text


def transfer_decode(data: bytes, encoding: str) -> bytes:
    """Undo base64 or quoted-printable leniently; anything else is taken as is."""
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    if encoding != "base64":
        return data
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:  # bad padding or stray bytes: decode the clean, whole quanta
        clean = _NOT_BASE64_RE.sub(b"", data)
        return binascii.a2b_base64(clean[: len(clean) - len(clean) % 4])


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset if it is an ordinary one, else as UTF-8.

    Only ``ORDINARY_CHARSETS`` are used: Python also knows codecs such as
    ``punycode`` (quadratic in its input), ``utf-7``, ``rot13`` or ``idna``,
    which no mail needs and some of which an attacker could use to spend time.
    """
    codec = ordinary_codec(charset)
    try:
        return data.decode(codec, errors="replace")
    except (LookupError, ValueError):  # unreachable for the allowlist; kept as a guard
        return data.decode("utf-8", errors="replace")


def ordinary_codec(charset: str | None) -> str:
    """Python's codec name for ``charset`` if it is on the allowlist, else ``"utf-8"``."""
    if charset is None or not _CHARSET_NAME_RE.fullmatch(charset):
        return "utf-8"
    try:
        name = codecs.lookup(charset).name
    except (LookupError, ValueError):  # unknown, or a NUL in the name
        return "utf-8"
    return name if name in ORDINARY_CHARSETS else "utf-8"


def _charset(part: Message) -> str | None:
    return part.get_content_charset()


def unflow(text: str, *, delsp: bool) -> str:
    """Rejoin RFC 3676 format=flowed lines (soft breaks end in a space)."""
    out: list[str] = []
    pending = ""
    for stuffed in text.splitlines():
        line = stuffed.removeprefix(" ")  # space-stuffing
        if line.endswith(" ") and line != "-- ":  # "-- " is the signature separator
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)
