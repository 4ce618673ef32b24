"""The hand-written MIME reader (mail/mime.py, mail/parts.py) agrees with the stdlib parser.

The reference walks ``email.message_from_bytes``'s tree depth-first, takes each
inline text/plain and text/html leaf, undoes its transfer encoding with
``get_payload(decode=True)`` and decodes it with the same charset rule as ours
(an allowlisted charset as declared, anything else as UTF-8 with replacement:
``parts.ordinary_codec``). Both must find the same parts, in the same order,
with the same text: on every message of the golden corpus and on generated
MIME (nesting, charsets in and out of the allowlist, every transfer encoding,
CRLF or LF, a missing closing boundary).
"""

from __future__ import annotations

import base64
import email
import quopri
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otp_bot.mail.mime import read_mail
from otp_bot.mail.parts import MAX_DEPTH, MAX_PARTS, ordinary_codec, unflow

EMAILS = Path(__file__).parent / "emails"
CORPUS = sorted(EMAILS.glob("*.eml"))


def reference(raw: bytes) -> tuple[list[str], list[str], bool]:
    """(plain texts, html texts, has a message/rfc822 part) as the stdlib reads ``raw``."""
    plain: list[str] = []
    html: list[str] = []
    attached = False
    stack = [(email.message_from_bytes(raw, policy=compat32), 0)]
    for _ in range(MAX_PARTS):  # the reader's documented bounds: parts visited, depth
        if not stack:
            break
        part, depth = stack.pop()  # depth-first, children in order: MIME order
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            attached = True
        elif part.is_multipart():
            if depth < MAX_DEPTH:
                stack.extend((child, depth + 1) for child in reversed(part.get_payload()))
        elif ctype in ("text/plain", "text/html") and not _attachment(part):
            data = part.get_payload(decode=True) or b""
            text = data.decode(ordinary_codec(part.get_content_charset()), "replace")
            if ctype == "text/plain" and str(part.get_param("format", "")).lower() == "flowed":
                text = unflow(text, delsp=str(part.get_param("delsp", "")).lower() == "yes")
            (plain if ctype == "text/plain" else html).append(text)
    return plain, html, attached


def _attachment(part: Message) -> bool:
    return str(part.get("Content-Disposition", "")).strip().lower().startswith("attachment")


def ours(raw: bytes) -> tuple[list[str], list[str], bool]:
    mail = read_mail(raw)
    return list(mail.plain), list(mail.html), mail.attached_message


def _header_block_cut_short(raw: bytes) -> bool:
    """The stdlib ended the header block at a line that is not a header (not at the blank
    line), and so starts the body there; ours starts it after the blank line (RFC 5322)."""
    defects = email.message_from_bytes(raw, policy=compat32).defects
    return any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in defects)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_reads_as_the_stdlib_reads_it(path: Path) -> None:
    """Every golden e-mail: the same text parts, in order, with the same decoded text
    (a header block with a non-header line: ours reads the end of the stdlib's text)."""
    raw = path.read_bytes()
    if not _header_block_cut_short(raw):
        assert ours(raw) == reference(raw)
        return
    plain, html, attached = ours(raw)
    ref_plain, ref_html, ref_attached = reference(raw)
    assert (len(plain), len(html), attached) == (len(ref_plain), len(ref_html), ref_attached)
    for mine, theirs in zip([*plain, *html], [*ref_plain, *ref_html], strict=True):
        assert theirs.endswith(mine)


# --- generated MIME -------------------------------------------------------------

# Allowlisted charsets of several families, and names outside the allowlist
# (read as UTF-8 by both sides: the rule is part of what is compared).
CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis",
            "iso-8859-7", "gb2312", "utf-7", "x-unknown"]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "quoted-printable", "base64"]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


def _encode(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset, "replace")
    except LookupError:  # x-unknown: the bytes a sender would put there anyway
        return text.encode("utf-8")


@st.composite
def leaves(draw: st.DrawFn, newline: bytes) -> bytes:
    ctype = draw(st.sampled_from(["text/plain", "text/html"]))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(ENCODINGS))
    body = _encode(draw(TEXT), charset)
    if cte == "7bit":
        body = bytes(b if b < 128 and b not in b"\r" else ord("?") for b in body)
    if cte == "base64":
        body = base64.encodebytes(body)
    elif cte == "quoted-printable":
        body = quopri.encodestring(body)
    else:
        body = body.replace(b"\r", b"")
    head = f'Content-Type: {ctype}; charset="{charset}"\nContent-Transfer-Encoding: {cte}\n'
    if draw(st.booleans()) and draw(st.booleans()):
        head += "Content-Disposition: attachment; filename=a.txt\n"
    return _lines(head.encode() + b"\n" + body, newline)


def _lines(data: bytes, newline: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", newline)


@st.composite
def trees(draw: st.DrawFn, newline: bytes, depth: int = 0) -> bytes:
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 9)) == 0:
            inner = draw(leaves(newline))
            return _lines(b"Content-Type: message/rfc822\n\n", newline) + inner
        return draw(leaves(newline))
    kind = draw(st.sampled_from(["mixed", "alternative", "related"]))
    boundary = f"b{depth}-{draw(st.integers(0, 10**6))}"
    children = draw(st.lists(trees(newline, depth + 1), min_size=1, max_size=4))
    out = f'Content-Type: multipart/{kind}; boundary="{boundary}"\n\npreamble\n'.encode()
    for child in children:
        out += f"--{boundary}\n".encode() + child + b"\n"
    if draw(st.integers(0, 4)) != 0:  # else the closing boundary is missing
        out += f"--{boundary}--\nepilogue\n".encode()
    return _lines(out, newline)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    head = _lines(b"From: a@example.com\nSubject: x\nMIME-Version: 1.0\n", newline)
    return head + draw(trees(newline))


@settings(max_examples=300, deadline=None)
@given(messages())
def test_generated_mime_reads_as_the_stdlib_reads_it(raw: bytes) -> None:
    """Nested multiparts, charsets in and out of the allowlist, every transfer encoding,
    CRLF or LF, missing closing boundaries: the same parts and the same decoded text."""
    assert ours(raw) == reference(raw)
