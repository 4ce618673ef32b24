"""Reading codes and links out of decoded text, and flattening HTML without gluing digits."""

from __future__ import annotations

from urllib.parse import urlsplit

import ada_url
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otp_bot.mail.codes import find_code
from otp_bot.mail.flatten import flatten_html
from otp_bot.mail.links import (
    find_link,
    is_verification_link,
    unwrap,
    urls_in,
    verification_link,
)
from otp_bot.mail.parts import split_multipart, transfer_decode, unflow

CONFIRM = "https://www.linkedin.com/comm/psettings/email/confirm?id=AQF&token=t8"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your verification code:\n042917\nIt expires soon.", "042917"),
        ("Seu código de verificação é 774120.", "774120"),
        ("Voici votre code de vérification :\n620514", "620514"),
        ("Ihr Bestätigungscode lautet 903355", "903355"),
        ("Este es tu código de verificación:\n118844", "118844"),
        ("Hier is je verificatiecode:\n860271", "860271"),
        ("Ecco il tuo codice di verifica:\n337804", "337804"),
        ("337804 è il tuo codice di verifica", "337804"),
        ("Your PIN 4821", "4821"),
        ("Enter this code to verify your email: 52719", "52719"),
    ],
)
def test_codes_in_every_language(text: str, code: str) -> None:
    """A 4-8 digit code near a code/verification word is read in en, pt, fr, de, es, nl, it."""
    assert find_code("", [text]) == code


@pytest.mark.parametrize(
    "text",
    [
        "Your verification code request at 10:45 on 28/11/2026 was received.",
        "Verification code sent to +1 650 555 0123.",
        "Verify: code valid in Sunnyvale, CA 94085 only",
        "Your code: $1299 / R$ 5000 / 2500 €",
        "Verification request ID: 884211",
        "Confirm job #552190",
        "© 2026 LinkedIn. Confirm your email.",
        "Verify at https://www.linkedin.com/checkpoint/998877/verify?code=123456",
        "Verified · 1234 applicants",
        "1500 layoffs confirmed",
        "Postal code: 75008",
        "Your code:\n12345678901",
    ],
)
def test_numbers_that_are_not_codes(text: str) -> None:
    """Times, dates, phones, postal codes, prices, ids, years, URL digits and counts are skipped."""
    assert find_code("", [text]) is None


def test_subject_code_wins() -> None:
    """The subject's code is taken even when the body shows another one first."""
    assert find_code("118844 is your code", ["Your verification code: 550011"]) == "118844"


def test_year_like_code_only_when_nothing_else() -> None:
    """A lone 19xx/20xx is a code only if no other candidate qualifies."""
    assert find_code("", ["Your code:\n2019"]) == "2019"
    assert find_code("", ["Your code:\n2026\n481516"]) == "481516"


def test_flatten_joins_spans_but_not_cells() -> None:
    """Inline elements join digits; cells, rows and breaks keep numbers apart."""
    text, _ = flatten_html(
        "<table><tr><td>2026</td><td>11</td></tr></table>"
        "<p><span>04</span><b>29</b><font>17</font></p>1<br>2"
    )
    assert text.split("\n") == ["2026", "11", "042917", "1", "2"]


def test_flatten_drops_comments_styles_and_invisible_characters() -> None:
    """Comments, style/script and zero-width characters never reach the text."""
    text, hrefs = flatten_html(
        "<style>.a{color:#123456}</style><!-- 999999 --><script>var c=777777</script>"
        "<p>04\u200b29&#8203;17&nbsp;ok</p><a href='https://x.example/?a=1&amp;b=2'>x</a>"
    )
    assert text == "042917 ok\nx"
    assert hrefs == ["https://x.example/?a=1&b=2"]


def test_links_skip_help_unsubscribe_profile_and_tracking() -> None:
    """Only the confirm/verify path counts; 'verification' in a query string means nothing."""
    urls = [
        "https://www.linkedin.com/help/linkedin/answer/4788?trk=eml-email_verification",
        "https://www.linkedin.com/comm/psettings/email-unsubscribe?trk=verification",
        "https://www.linkedin.com/in/ana-souza/?trk=eml-verify",
        "https://www.linkedin.com/login?session_redirect=%2Fverify",
        "https://www.linkedin.com/checkpoint/rp/password-reset?confirm=1",
        "https://www.linkedin.com/emimp/ip_verification.gif",
        "http://www.linkedin.com/comm/psettings/email/confirm?id=1",
        "https://linkedin.com.evil.example/psettings/email/confirm",
        CONFIRM,
    ]
    assert find_link(urls) == CONFIRM
    assert not any(is_verification_link(url) for url in urls[:-1])


def test_safe_links_and_google_redirects_are_unwrapped() -> None:
    """Outlook Safe Links and Google /url wrappers give back the LinkedIn URL."""
    safe = (
        "https://eur02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.linkedin.com"
        "%2Fcomm%2Fpsettings%2Femail%2Fconfirm%3Fid%3DAQF%26token%3Dt8&data=05%7C02&reserved=0"
    )
    assert unwrap(safe) == CONFIRM
    assert unwrap("https://www.google.com/url?q=" + CONFIRM.replace("&", "%26")) == CONFIRM
    assert find_link([safe]) == CONFIRM


def test_plain_urls_lose_trailing_punctuation() -> None:
    """A URL ending a sentence or in brackets does not keep the punctuation."""
    assert urls_in(f"Confirm ({CONFIRM}). Thanks") == [CONFIRM]


def test_flowed_text_is_rejoined() -> None:
    """format=flowed soft breaks are undone; delsp=yes removes the break's space."""
    assert unflow("a long \r\n line\r\nnext", delsp=False) == "a long line\nnext"
    assert unflow("https://x.example/ab \r\ncd\r\n-- \r\nsig", delsp=True) == (
        "https://x.example/abcd\n-- \nsig"
    )


def test_transfer_decoding_is_lenient() -> None:
    """Quoted-printable soft breaks vanish; broken base64 decodes its whole quanta."""
    assert transfer_decode(b"https://www.linked=\r\nin.com/a=3Db", "quoted-printable") == (
        b"https://www.linkedin.com/a=b"
    )
    assert transfer_decode(b"WW91ciBjb2Rl!!!*", "base64") == b"Your code"


def test_multipart_split_tolerates_a_missing_end() -> None:
    """Parts end at the next delimiter line; an unclosed last part runs to the end."""
    body = b"preamble\r\n--b\r\none\r\n--bx\r\n--b \r\ntwo\r\n--b--\r\nepilogue"
    assert split_multipart(body, b"b") == [b"one\r\n--bx", b"two"]
    assert split_multipart(b"--b\r\nonly\r\n", b"b") == [b"only\r\n"]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example\\@www.linkedin.com/psettings/email/confirm?id=1",
        "https://evil.example%5C@www.linkedin.com/psettings/email/confirm?id=1",
        "https://www.linkedin.com\\psettings\\email\\confirm?id=1",
        "https://www.linkedin.com/psettings/email/confirm/../../redir/redirect?url=x",
        "https://www.linkedin.com/psettings/email/confirm/%2e%2E/%2e./redir/redirect?url=x",
        "https://www.linkedin.com/psettings/email/confirm/.%2e/redir",
        "https://www.linkedin.com/psettings%2femail%2fconfirm",
        "https://www.linkedin.com/psettings/email/confirm;jsessionid=1",
        "https://www.linkedin.com:443/psettings/email/confirm",
        "https://www.linkedin.com:/psettings/email/confirm",
        "https://a:b@www.linkedin.com/psettings/email/confirm",
        "https://@www.linkedin.com/psettings/email/confirm",
        "https://www.linkedin.com./psettings/email/confirm",
        "https://uk.linkedin.com/psettings/email/confirm",
        "https://www.linkedin.com\t/psettings/email/confirm",
        "https:www.linkedin.com/psettings/email/confirm",
        "https:/www.linkedin.com/psettings/email/confirm",
        "HTTP://www.linkedin.com/psettings/email/confirm",
        "https://www.linkedin.com/psettings/email/confirm-evil",
        "https://www.linkedin.com/e/v2?e=1&a=checkpoint-password-reset",
        "https://www.linkedin.com/e/v2?e=1&a=psettings-email-confirm&a=redir-redirect",
        "https://www.linkedin.com/e/v2?e=1",
        "https://www.linkedin.com/comm/comm/psettings/email/confirm",
    ],
)
def test_links_browsers_could_read_otherwise_are_refused(url: str) -> None:
    """Backslashes, userinfo, ports, dot segments (raw or encoded), ';', other hosts, http,
    other redirect actions: none of them is a verification link."""
    assert verification_link(url) is None


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "https://WWW.LinkedIn.com/comm/psettings/email/confirm?id=1&lipi=a%2Fb",
            "https://www.linkedin.com/comm/psettings/email/confirm?id=1&lipi=a%2Fb",
        ),
        (
            "https://linkedin.com/psettings/email/confirm?id=1#top",
            "https://linkedin.com/psettings/email/confirm?id=1#top",
        ),
        (
            "https://www.linkedin.com/e/v2?e=x&a=psettings-email-confirm&midToken=AQ",
            "https://www.linkedin.com/e/v2?e=x&a=psettings-email-confirm&midToken=AQ",
        ),
        (
            "https://www.linkedin.com/comm/job-posting/verify-email?jobId=1&q=a b",
            None,  # a space never survives urls_in; refused when it gets here
        ),
        (
            "https://www.linkedin.com/verify/work-email?token=Zé",
            "https://www.linkedin.com/verify/work-email?token=Z%C3%A9",
        ),
    ],
)
def test_accepted_links_are_stored_in_canonical_form(url: str, canonical: str | None) -> None:
    """What is stored and submitted is the WHATWG serialization of the accepted link."""
    assert verification_link(url) == canonical


_PIECES = st.sampled_from(
    [
        "https://", "http://", "www.linkedin.com", "linkedin.com", "evil.example", "@", "\\",
        ":443", "/", "psettings", "email", "confirm", "..", ".", "%2e", "%2F", ";x", "?a=",
        "psettings-email-confirm", "#", "comm", "e", "v2", "&", "%40", "\t", " ", "%5c",
    ]
)  # fmt: skip


_BASES = st.sampled_from(
    [
        "https://www.linkedin.com/psettings/email/confirm?id=1&sig=2",
        "https://linkedin.com/comm/psettings/email/confirm?id=1",
        "https://www.linkedin.com/e/v2?e=1&a=psettings-email-confirm",
        "https://www.linkedin.com/comm/job-posting/verify-email?jobId=7",
    ]
)


@st.composite
def _mangled(draw: st.DrawFn) -> str:
    """A genuine link with a few tricky pieces spliced in anywhere, or pieces alone."""
    url = draw(st.one_of(_BASES, st.lists(_PIECES, min_size=3, max_size=14).map("".join)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(url)))
        url = url[:at] + draw(_PIECES) + url[at:]
    return url


@settings(max_examples=3000, deadline=None)
@given(_mangled())
def test_any_accepted_link_is_what_a_browser_would_open(url: str) -> None:
    """Whatever pieces are glued together, an accepted link is https, on LinkedIn's exact
    hosts, without userinfo or port, its path on the allowlist, and stored as ada reads it."""
    canonical = verification_link(url)
    if canonical is None:
        return
    parsed = ada_url.parse_url(url)
    assert canonical == parsed["href"]
    assert parsed["protocol"] == "https:"
    assert parsed["hostname"] in ("www.linkedin.com", "linkedin.com")
    assert parsed["username"] == parsed["password"] == parsed["port"] == ""
    assert parsed["pathname"] == urlsplit(url).path  # nothing normalized away
    assert verification_link(canonical) == canonical
