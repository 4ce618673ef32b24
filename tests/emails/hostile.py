"""Hostile messages too big to store in the corpus, built on demand.

Shared by tests/test_extract_hostile.py and bench/extract.py. Each entry is a
name, the raw bytes and the code still readable in it (None: nothing to find).
"""

from __future__ import annotations

import base64
import random

_TOP = (
    "Authentication-Results: mx.google.com; dkim=pass header.i=@linkedin.com;"
    " dmarc=pass header.from=linkedin.com\r\n"
    "From: LinkedIn <security-noreply@linkedin.com>\r\nTo: ana.souza@example.com\r\n"
    "Subject: Your verification code\r\nMessage-ID: <hostile@linkedin.com>\r\n"
    "MIME-Version: 1.0\r\n"
)
_CODE_PART = (
    "Content-Type: text/plain; charset=utf-8\r\n\r\nYour verification code:\r\n\r\n482913\r\n"
)


def _mixed(*parts: str) -> str:
    inner = "".join(f"--hx\r\n{p}\r\n" for p in parts)
    return f'Content-Type: multipart/mixed; boundary="hx"\r\n\r\n{inner}--hx--\r\n'


def _html(markup: str) -> bytes:
    return (_TOP + "Content-Type: text/html; charset=utf-8\r\n\r\n" + markup).encode()


def big_attachment(megabytes: int = 6) -> bytes:
    blob = base64.encodebytes(random.Random(1).randbytes(megabytes * 750_000)).decode()
    attachment = (
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment; filename=cv.pdf\r\n\r\n{blob}"
    )
    return (_TOP + _mixed(_CODE_PART, attachment)).encode()


def deep_multipart(depth: int) -> bytes:
    body = _CODE_PART
    for level in range(depth):
        body = f'Content-Type: multipart/mixed; boundary="d{level}"\r\n\r\n--d{level}\r\n{body}'
    return (_TOP + body).encode()


def wide_and_deep(width: int = 60) -> bytes:
    leaf = "Content-Type: text/plain\r\n\r\nx"
    inner = _mixed(*[leaf] * width).replace("hx", "in")
    return (_TOP + _mixed(_CODE_PART, *[inner] * width)).encode()


def cases() -> list[tuple[str, bytes, str | None]]:
    """(name, raw, code still readable or None) for every hostile shape."""
    rng = random.Random(7)
    return [
        ("attachment_6mb", big_attachment(), "482913"),
        (
            "nested_html_200k",
            _html("<p>Your verification code:</p><p>482913</p>" + "<div>" * 200_000),
            "482913",
        ),
        ("nested_html_200k_code_last", _html("<span>" * 200_000 + "code: 482913"), None),
        ("multipart_depth_60", deep_multipart(60), None),
        ("multipart_60_by_60", wide_and_deep(), "482913"),
        ("multipart_depth_5000", deep_multipart(5000), None),
        ("unclosed_comments", _html("<!--" * 250_000), None),
        ("unclosed_tags", _html("<a href='x' " * 100_000 + "<" * 200_000), None),
        ("style_bombs", _html("<style>x</style>" * 60_000 + "<script>" * 60_000), None),
        ("keyword_flood", _html("code 123456 " * 100_000), "123456"),
        ("digit_flood", _html("code: " + "1" * 1_000_000), None),
        ("newline_flood", (_TOP + "\r\n" + "\n" * 2_000_000).encode(), None),
        ("one_long_line", (_TOP + "\r\n" + "x" * 3_000_000).encode(), None),
        ("header_flood", ("X-A: b\r\n" * 200_000 + _TOP + "\r\nhi").encode(), None),
        ("random_8mb", rng.randbytes(8 << 20), None),
        (
            "boundary_flood",
            (_TOP + _mixed(*["Content-Type: text/plain\r\n\r\ncode"] * 40_000)).encode(),
            None,
        ),
        (
            "base64_garbage",
            (_TOP + "Content-Transfer-Encoding: base64\r\n\r\n" + "!@#$" * 500_000).encode(),
            None,
        ),
    ]
