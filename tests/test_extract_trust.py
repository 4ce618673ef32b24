"""Trust: the sender pre-filter, the RFC 8601 reader (checked against authres) and the verdict."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from pathlib import Path

import authres
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otp_bot.mail import authresults
from otp_bot.mail.trust import authentication_verdict, parse_sender, sender_domain_trusted

EMAILS = Path(__file__).parent / "emails"


@pytest.mark.parametrize(
    ("from_header", "trusted"),
    [
        ("LinkedIn <security-noreply@linkedin.com>", True),
        ("jobs-noreply@e.linkedin.com", True),
        ("LinkedIn <Security-NoReply@LinkedIn.COM.>", True),
        ("=?UTF-8?Q?LinkedIn?= <messages-noreply@linkedin.com>", True),
        ("security-noreply@linkedln.com", False),
        ("security-noreply@linkedin.com.example.net", False),
        ("security-noreply@evil-linkedin.com", False),
        ("security@xn--linkedn-c8a.com", False),
        ("security@linked\u0131n.com", False),
        ('"LinkedIn Security" <alerts@secure-mail.example>', False),
        ('"security-noreply@linkedin.com" <x@linkedin-mail-security.com>', False),
        ('"x@linkedin.com"@evil.example', False),
        ("<@linkedin.com:evil@evil.example>", False),
        ("a@linkedin.com, b@evil.example", False),
        ("", False),
        ("linkedin.com", False),
    ],
)
def test_sender_domain_trusted(from_header: str, trusted: bool) -> None:
    """Only a single addr-spec whose domain is linkedin.com or a subdomain passes."""
    assert sender_domain_trusted(from_header) is trusted


def test_parse_sender_lowercases_domain_only() -> None:
    """The sender keeps its local part and lower-cases its domain."""
    assert parse_sender("LinkedIn <Security-NoReply@LinkedIn.com>") == (
        "Security-NoReply@linkedin.com"
    )


def _authres_view(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """What the authres package reads from a header, in authresults' shape."""
    header = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    results = [
        (
            r.method.lower(),
            r.result.lower(),
            {f"{p.type}.{p.name}".lower(): str(p.value) for p in r.properties},
        )
        for r in header.results
    ]
    return header.authserv_id.lower(), results


def _ours(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    header = authresults.parse(value)
    return header.authserv_id, [(r.method, r.result, r.props) for r in header.results]


def _corpus_headers() -> list[str]:
    values: set[str] = set()
    for path in EMAILS.glob("*.eml"):
        headers = BytesHeaderParser().parsebytes(path.read_bytes()[:65536])
        values.update(str(v) for v in headers.get_all("Authentication-Results", []))
    return sorted(values)


@pytest.mark.parametrize("value", _corpus_headers())
def test_reader_agrees_with_authres_on_corpus(value: str) -> None:
    """Our RFC 8601 reader reads every corpus header as the authres package does."""
    if value.lstrip().startswith("spf="):  # Microsoft 365: no authserv-id, authres refuses
        value = "outlook.invalid; " + value
    try:
        expected = _authres_view(value)
    except authres.core.AuthResError:
        pytest.skip("authres cannot read this header either")
    assert _ours(value) == expected


_WORD = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_COMMENT = st.sampled_from(
    ["", " (a comment)", " (nested (comment))", ' (a "quote)', r" (esc\) paren)"]
)
_VALUE = st.one_of(
    _WORD.map(lambda w: f"{w}.example"),
    _WORD.map(lambda w: f"@{w}.com"),
    st.just("rsa-sha256"),  # no quoted values: authres 1.2 drops a quoted property mid-list
)


@st.composite
def _header(draw: st.DrawFn) -> str:
    resinfos = []
    for _ in range(draw(st.integers(1, 4))):
        method, result = draw(_WORD), draw(st.sampled_from(["pass", "fail", "none", "neutral"]))
        props = [
            f"{draw(st.sampled_from(['header', 'smtp', 'policy']))}.{draw(_WORD)}={draw(_VALUE)}"
            for _ in range(draw(st.integers(0, 3)))
        ]
        resinfos.append(f"{method}={result}{draw(_COMMENT)} " + " ".join(props))
    return f"{draw(_WORD)}.example{draw(_COMMENT)}; " + "; ".join(resinfos)


@settings(max_examples=200, deadline=None)
@given(_header())
def test_reader_agrees_with_authres_on_generated_headers(value: str) -> None:
    """On generated headers with comments and quoted values both readers agree."""
    expected = _authres_view(value)
    assert _ours(value) == expected


def test_reader_keeps_semicolons_inside_quoted_values() -> None:
    """A quoted value may hold ";" (RFC 8601 pvalue); it neither splits nor hides a property."""
    header = authresults.parse('mx; dkim=pass header.b="a; b" header.d=linkedin.com; dmarc=fail')
    assert [(r.method, r.props) for r in header.results] == [
        ("dkim", {"header.b": "a; b", "header.d": "linkedin.com"}),
        ("dmarc", {}),
    ]


GMAIL_PASS = (
    "mx.google.com; dkim=pass header.i=@linkedin.com header.s=s1 header.b=AbC;"
    " spf=pass (google.com: domain of x@bounce.linkedin.com designates 1.2.3.4 as permitted"
    " sender) smtp.mailfrom=x@bounce.linkedin.com; dmarc=pass (p=REJECT) header.from=linkedin.com"
)


@pytest.mark.parametrize(
    ("headers", "trusted_ids", "verdict"),
    [
        ([GMAIL_PASS], frozenset(), None),
        (["mx; dmarc=pass header.from=linkedin.com"], frozenset(), None),
        (["mx; dkim=pass header.d=e.linkedin.com"], frozenset(), None),
        (
            ["spf=pass smtp.mailfrom=linkedin.com; dkim=pass header.d=linkedin.com"],
            frozenset(),
            None,
        ),
        ([], frozenset(), "no_authentication_results"),
        (
            ["mx; dkim=fail header.d=linkedin.com", GMAIL_PASS],
            frozenset(),
            "dkim_dmarc_not_pass: dkim=fail",
        ),
        (
            ["mx; dkim=pass header.d=linkedin.com.evil.example"],
            frozenset(),
            "dkim_dmarc_not_pass: dkim=pass",
        ),
        (["mx; spf=pass smtp.mailfrom=linkedin.com"], frozenset(), "dkim_dmarc_not_pass: spf=pass"),
        (
            ["mx; dkim=pass (header.d=linkedin.com) header.d=evil.example"],
            frozenset(),
            "dkim_dmarc_not_pass: dkim=pass",
        ),
        (
            ["relay; none", "mx.example.org; dkim=pass header.d=linkedin.com"],
            frozenset({"MX.example.org"}),
            None,
        ),
        (
            ["mx.example.org; none", GMAIL_PASS],
            frozenset({"mx.example.org"}),
            "dkim_dmarc_not_pass: none",
        ),
        ([GMAIL_PASS], frozenset({"mx.example.org"}), None),
        (
            [
                "relay; none",
                "mx.example.org; dkim=fail header.d=linkedin.com",
                "mx.example.org; dkim=pass header.d=linkedin.com",
            ],
            frozenset({"mx.example.org"}),
            "dkim_dmarc_not_pass: none",
        ),
        (
            ["relay; none", "mx.example.org; dkim=pass header.d=linkedin.com"],
            frozenset(),
            "dkim_dmarc_not_pass: none",
        ),
    ],
)
def test_authentication_verdict(
    headers: list[str], trusted_ids: frozenset[str], verdict: str | None
) -> None:
    """Topmost or topmost-trusted-id header vouches for LinkedIn; lower same-id forgeries don't."""
    assert authentication_verdict(headers, trusted_ids) == verdict
