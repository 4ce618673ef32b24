"""Trust: the sender pre-filter, the RFC 8601 reader (checked against authres) and the verdict."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from pathlib import Path

import authres
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otp_bot.mail import authresults
from otp_bot.mail.trust import (
    RECEIVED,
    authentication_verdict,
    parse_sender,
    sender_domain_trusted,
)

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
# No quote inside a comment: RFC 5322 reads it as text, other parsers as a quoted
# string, so ours refuses it (test_quote_inside_comment_is_unreadable).
_COMMENT = st.sampled_from(["", " (a comment)", " (nested (comment))", r" (esc\) paren)"])
_VALUE = st.one_of(
    _WORD.map(lambda w: f"{w}.example"),
    _WORD.map(lambda w: f"@{w}.com"),
    st.just("rsa-sha256"),  # no quoted values: authres 1.2 drops a quoted property mid-list
)


_PROPERTY = st.builds(
    lambda ptype, name: f"{ptype}.{name}", st.sampled_from(["header", "smtp", "policy"]), _WORD
)


@st.composite
def _header(draw: st.DrawFn) -> str:
    resinfos = []
    for _ in range(draw(st.integers(1, 4))):
        method, result = draw(_WORD), draw(st.sampled_from(["pass", "fail", "none", "neutral"]))
        names = draw(st.lists(_PROPERTY, max_size=3, unique=True))  # a repeat is unreadable
        props = [f"{name}={draw(_VALUE)}" for name in names]
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
                RECEIVED,
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
    headers: list[str | None], trusted_ids: frozenset[str], verdict: str | None
) -> None:
    """Topmost or topmost-trusted-id header vouches for LinkedIn; lower same-id forgeries don't."""
    assert authentication_verdict(headers, trusted_ids) == verdict


# RFC 8601 Appendix B (the same examples as RFC 7601's), one header value each.
RFC_8601_APPENDIX_B = [
    ("example.org 1; none", "example.org", []),
    ("example.com; spf=pass smtp.mailfrom=example.net", "example.com", [("spf", "pass")]),
    (
        "example.com; auth=pass (cram-md5) smtp.auth=sender@example.net;"
        " spf=pass smtp.mailfrom=example.net",
        "example.com",
        [("auth", "pass"), ("spf", "pass")],
    ),
    ("example.com; iprev=pass policy.iprev=192.0.2.200", "example.com", [("iprev", "pass")]),
    (
        "example.com; dkim=pass (good signature) header.d=mail-router.example.net;"
        " dkim=fail (bad signature) header.d=newyork.example.com",
        "example.com",
        [("dkim", "pass"), ("dkim", "fail")],
    ),
    (
        'example.com; dkim=pass reason="good signature" header.i=@mail-router.example.net;'
        ' dkim=fail reason="bad signature" header.i=@newyork.example.com',
        "example.com",
        [("dkim", "pass"), ("dkim", "fail")],
    ),
    (
        "example.net; dkim=pass (good signature) header.i=@newyork.example.com",
        "example.net",
        [("dkim", "pass")],
    ),
    (
        "mail-router.example.net; dkim=pass (good signature) header.d=newyork.example.com"
        " header.b=oINEO8hg; vbr=pass (voucher.example.net) header.d=newyork.example.com"
        " header.mv=voucher.example.org",
        "mail-router.example.net",
        [("dkim", "pass"), ("vbr", "pass")],
    ),
    (
        "example.com; sender-id=fail header.from=example.com; dkim=pass (good signature)"
        " header.d=sub.example.com",
        "example.com",
        [("sender-id", "fail"), ("dkim", "pass")],
    ),
]


@pytest.mark.parametrize(("value", "server", "results"), RFC_8601_APPENDIX_B)
def test_rfc_8601_appendix_b_examples(
    value: str, server: str, results: list[tuple[str, str]]
) -> None:
    """The RFC's own examples read as the RFC says, and as authres reads them."""
    header = authresults.parse(value)
    assert header.error is None
    assert header.authserv_id == server
    assert [(r.method, r.result) for r in header.results] == results
    assert _ours(value) == _authres_view(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("mx; dkim=pass (unclosed header.d=linkedin.com", "unbalanced comment"),
        ("mx; dkim=pass) header.d=linkedin.com", "stray ')'"),
        ('mx; dkim=pass header.b="unclosed', "unterminated quoted string"),
        ("mx; dkim=pass header.d=linked\\in.com", "stray '\\\\'"),
        ("mx; dkim=pass ((((( deep ))))) header.d=linkedin.com", "comments nested deeper than 4"),
        ("mx; spf=pass " + "x" * 5000, "longer than 4096 characters"),
        (
            'mx; spf=pass (domain of "a) header.d=linkedin.com',
            "a quote inside a comment (ambiguous)",
        ),
    ],
)
def test_unreadable_values(value: str, error: str) -> None:
    """Unbalanced, too deep, too long or ambiguous values are unreadable, never half-read."""
    header = authresults.parse(value)
    assert (header.error, header.results) == (error, ())


def test_quote_inside_comment_is_unreadable() -> None:
    """A quote in a comment is refused (RFC 5322 and common parsers read it differently)."""
    assert authresults.parse('mx; dkim=pass (a "quote) header.d=linkedin.com').error is not None


# The receiving server copies the envelope sender into its spf comment; the sender's
# quoted local part closes that comment for an RFC 5322 reader.
_MAIL_FROM = '"a)x; dkim=pass header.d=linkedin.com; x=(b"@evil.example'
SPF_COMMENT_ATTACK = (
    f"mx.example.org; spf=pass (mx.example.org: domain of {_MAIL_FROM} designates 192.0.2.1"
    f" as permitted sender) smtp.mailfrom={_MAIL_FROM}; dkim=none"
)


@pytest.mark.parametrize(
    ("trace", "verdict"),
    [
        (
            ["mx; dkim=none; dkim=pass header.d=linkedin.com"],
            "conflicting_results: dkim=none and pass",
        ),
        (
            ["mx; dkim=pass header.d=linkedin.com; dmarc=fail header.from=linkedin.com"],
            "dmarc_not_pass: dmarc=fail for linkedin.com",
        ),
        (
            [
                "mx; dmarc=pass header.from=linkedin.com; dmarc=fail header.from=linkedin.com",
            ],
            "conflicting_results: dmarc=pass and fail",
        ),
        (
            ["mx; dkim=pass (unbalanced header.d=linkedin.com"],
            "authentication_results_unreadable: unbalanced comment",
        ),
        (
            [SPF_COMMENT_ATTACK],
            "authentication_results_unreadable: a quote inside a comment (ambiguous)",
        ),
        (
            ["mx; dkim=pass header.d=evil.example header.d=linkedin.com"],
            "authentication_results_unreadable: repeated property header.d",
        ),
        (
            ['mx; dkim=pass header.i="@linkedin.com"@evil.example'],
            "dkim_dmarc_not_pass: dkim=pass",
        ),
        (['mx; dkim=pass header.i="x y"@linkedin.com'], None),
        (['mx; dkim=pass header.i="@linkedin.com"'], None),
        # Postfix with OpenDMARC and OpenDKIM: one header per milter, above its Received.
        (
            [
                "mail.example.org; dmarc=pass header.from=linkedin.com",
                "mail.example.org; dkim=pass header.d=linkedin.com",
                RECEIVED,
            ],
            None,
        ),
        (
            [
                "mail.example.org; spf=pass smtp.mailfrom=bounce.linkedin.com",
                "mail.example.org; dkim=pass header.d=linkedin.com",
                RECEIVED,
            ],
            None,
        ),
        # The same results below the server's Received line came with the mail.
        (
            [
                "mail.example.org; spf=pass smtp.mailfrom=bounce.linkedin.com",
                RECEIVED,
                "mail.example.org; dkim=pass header.d=linkedin.com",
            ],
            "dkim_dmarc_not_pass: spf=pass",
        ),
        # A split group is judged whole: a failing dmarc in any of its headers counts.
        (
            [
                "mail.example.org; dkim=pass header.d=linkedin.com",
                "mail.example.org; dmarc=fail header.from=linkedin.com",
                RECEIVED,
            ],
            "dmarc_not_pass: dmarc=fail for linkedin.com",
        ),
        # Another server's header inside the group neither joins nor breaks it.
        (
            [
                "mail.example.org; spf=pass smtp.mailfrom=linkedin.com",
                "other.example; dkim=fail header.d=linkedin.com",
                "mail.example.org; dkim=pass header.d=linkedin.com",
                RECEIVED,
            ],
            None,
        ),
    ],
)
def test_strict_verdicts(trace: list[str | None], verdict: str | None) -> None:
    """Conflicts, dmarc failures, unreadable values and quoted local parts are not trusted;
    split results count together only above the server's Received line."""
    assert authentication_verdict(trace) == verdict


@pytest.mark.parametrize(
    "from_header",
    [
        "(" * 600 + "a@linkedin.com" + ")" * 600,
        "a@linkedin.com " + "(" * 600,
        "x" * 5000 + "@linkedin.com",
        "(((((nested))))) security-noreply@linkedin.com",
    ],
)
def test_parse_sender_refuses_deep_or_long_values(from_header: str) -> None:
    """Deep comment nesting or an over-long From is refused before the stdlib parser recurses."""
    assert parse_sender(from_header) is None


def test_parse_sender_keeps_shallow_comments_and_escapes() -> None:
    """Ordinary comments and escaped parentheses still parse."""
    assert parse_sender("LinkedIn (Security \\( team) <security-noreply@linkedin.com>") == (
        "security-noreply@linkedin.com"
    )
