"""Find a one-time code and a verification link in decoded e-mail text.

A code is a run of 4 to 8 ASCII digits (full-width digits are read as
ASCII) near a word for "code", "PIN" or "verification" in one of LinkedIn's
languages, that is not part of a larger number (phone, date, time, price,
postal code, id) and not inside a URL. Layouts read: keyword then digits
("code: N", "code is N", "código de verificação N"), digits then keyword
("N is your code", "N는 인증 코드"), the code alone on its line below the
keyword. A link is a LinkedIn verification URL judged as a browser parses it
(``verification_link``). Which mails are read at all is decided before this
module (``otp_bot.mail.verification``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import ada_url

# Stems of "code", "PIN", "verify/confirm" in en, de, fr, es, pt, it, nl, sv,
# da, nb, pl, tr, ja, zh and ko; a Latin stem takes the rest of its word along
# ("verificação", "kodunuz"), never digits. Compounds (Bestätigungscode,
# verificatiecode) contain a stem already.
_KEYWORD_RE = re.compile(
    r"(?:c[oó]d(?:e|igo|ice)|\bkod|\bkode|\bpin\b|\botp\b|passcode|verifi|vérifi|bestätig|"
    r"bevestig|confirm|conferma|bekräft|bekræft|bekreft|weryfik|potwierdz|doğrula|onay)"
    r"[^\W\d_]*+"
    r"|コード|確認|認証|验证码|驗證碼|验证|驗證|确认|確認|代码|代碼|인증|코드|확인|암호",
    re.IGNORECASE,
)
# How far a code may sit from its keyword: LinkedIn puts it on the next line
# ("Your verification code" ... "042917") or just before ("042917 is your code").
_AFTER_WINDOW = 160
_BEFORE_WINDOW = 48
# Digits glue to Latin, Greek and Cyrillic letters (a word like "abc123456"),
# not to kana, CJK or Hangul ("コードは482913です").
_GLUE = r"0-9A-Za-z_\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
_CANDIDATE_RE = re.compile(rf"(?<![{_GLUE}$€£¥])[0-9]{{4,8}}(?![{_GLUE}])")
_FULL_WIDTH = {0xFF10 + digit: ord("0") + digit for digit in range(10)} | {0xFF1A: ord(":")}
_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"'\])]++", re.IGNORECASE)
# Digit groups: another number joined by a space or punctuation (phone
# numbers, dates, times, decimals, thousands separators).
_GROUP_BEFORE_RE = re.compile(r"[0-9][ .,:/\-]?\Z|[+(]\Z")
_GROUP_AFTER_RE = re.compile(r"^(?:[ .,:/\-]?[0-9]|\))")
_MONEY_BEFORE_RE = re.compile(r"(?:[$€£¥₹]|R\$|\b(?:USD|EUR|BRL|GBP|CHF))\s?\Z", re.IGNORECASE)
_MONEY_AFTER_RE = re.compile(r"^\s?(?:[$€£¥₹%]|(?:USD|EUR|BRL|GBP|CHF|euros?|reais)\b)", re.I)
_ID_BEFORE_RE = re.compile(r"(?:\b(?:id|ref|nr)\.?|\bno\.|n[º°]|#)\s*[:#]?\s*\Z", re.IGNORECASE)
_POSTAL_BEFORE_RE = re.compile(
    r"\b(?:zip|postal|post|cep|plz)[\s-]?(?:code|código)?\s*:?\s*\Z", re.IGNORECASE
)
# "Sunnyvale, CA 94085": a US state before five digits (case-sensitive on purpose).
_STATE_BEFORE_RE = re.compile(r"\b[A-Z]{2},? \Z")
_YEAR_CONTEXT_RE = re.compile(
    r"(?:©|\(c\)|copyright|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?)\s*\Z",
    re.IGNORECASE,
)
# Verbs joining keyword and code ("code is N", "código é N", "Code lautet N",
# "kod to N", "kode er N", "验证码为 N", "코드는 N").
_VERBS = r"\b(?:is|é|est|ist|lautet|es|è|sono|são|är|er|to|jest|je)\b|[是为為はが는은이가]"
# What may stand between keyword and code in a sentence: nothing, or a short
# lead-in ending in a colon or a verb; before the keyword, a verb.
_LEAD_IN_RE = re.compile(rf"\s*|[^\n.!?]{{0,48}}(?::|{_VERBS})\s*:?\s*", re.IGNORECASE)
_LEAD_OUT_RE = re.compile(rf"\s*(?:{_VERBS})[^\n.!?0-9]{{0,32}}|\s+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}>'\""
_SAFE_LINK_HOSTS = ("safelinks.protection.outlook.com",)
_LINK_HINTS = ("confirm", "verif", "/e/v2")
_WRAPPER_HINTS = ("safelinks.protection.outlook.com", "google.com/url")
_WRAPPED_LINK_HINTS = ("confirm", "verif", "e%2fv2", "/e/v2")
_LINK_HOSTS = ("www.linkedin.com", "linkedin.com")
_MAX_URL_CHARS = 4096
# Backslashes (browsers read them as "/"), spaces and controls (browsers drop
# tabs and newlines inside a URL).
_AMBIGUOUS_CHARS_RE = re.compile(r"[\\\x00-\x20\x7f]")
# In a path: "%" escapes of ".", "/" or a backslash (dot segments in disguise).
_ENCODED_DOTS_RE = re.compile(r"%(?:2[eEfF]|5[cC])")
# LinkedIn's verification pages (without the /comm/ tracking prefix): e-mail
# confirmation, work e-mail verification, job-posting e-mail verification.
_VERIFICATION_PATH_RE = re.compile(
    r"/psettings/email/confirm|/psettings/email/verify|/psettings/email/work-email/confirm|"
    r"/verify/work-email|/verify-work-email|/job-posting/verify-email"
)
# The "a=" action of a /e/v2 tracking redirect that leads to one of them.
_VERIFICATION_ACTION_RE = re.compile(
    r"psettings-email-confirm|email-confirm(?:ation)?|confirm-email|email-verification|"
    r"verify-email|work-email-verification|verify-work-email|job-posting-verify-email"
)
_MAX_UNWRAP = 3
# Work bounds for hostile text: LinkedIn's code sits in the first few KB after
# one of the first few keywords, and its mails carry fewer than 100 links.
_MAX_SCAN_CHARS = 64 * 1024
_MAX_KEYWORDS = 32
_MAX_LINKS = 256


def find_code(subject: str, texts: list[str]) -> str | None:
    """The code in the subject if it has one, else the first one found in ``texts``."""
    for text in [subject, *texts]:
        code = _code_in(_URL_RE.sub(" ", text[:_MAX_SCAN_CHARS].translate(_FULL_WIDTH)))
        if code is not None:
            return code
    return None


def _code_in(text: str) -> str | None:
    """The best candidate in ``text``: ``(tier, distance)`` decides, lowest first."""
    best: tuple[int, int, str] | None = None
    for count, keyword in enumerate(_KEYWORD_RE.finditer(text)):
        if count == _MAX_KEYWORDS:
            break
        lo = max(0, keyword.start() - _BEFORE_WINDOW)
        hi = keyword.end() + _AFTER_WINDOW
        for match in _CANDIDATE_RE.finditer(text, lo, hi):
            rank = _rank(text, keyword, match)
            if rank is not None and (best is None or rank < best[:2]):
                best = (*rank, match.group())
    return None if best is None else best[2]


def _rank(text: str, keyword: re.Match[str], match: re.Match[str]) -> tuple[int, int] | None:
    """Tier 0: alone on its line after the keyword (LinkedIn's layout); tier 1: "code: N",
    "code is N" or "N is your code"; tier 2: a year-like four digits alone on its line.
    None: not a code (part of a larger number, money, id, postal code, or just prose)."""
    start, end = match.span()
    if not _plausible(text, start, end):
        return None
    alone = _alone_on_line(text, start, end)
    if start >= keyword.end():
        distance = start - keyword.end()
        gap = text[keyword.end() : start]
        tier = 0 if alone else 1 if _LEAD_IN_RE.fullmatch(gap) else None
    else:
        distance = keyword.start() - end
        tier = 1 if _LEAD_OUT_RE.fullmatch(text[end : keyword.start()]) else None
    if tier is None:
        return None
    if len(match.group()) == 4 and match.group()[:2] in ("19", "20"):
        tier = 2 if alone and not _YEAR_CONTEXT_RE.search(text[max(0, start - 24) : start]) else -1
    return None if tier < 0 else (tier, distance)


def _plausible(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 24) : start]
    after = text[end : end + 12]
    if _GROUP_BEFORE_RE.search(before) or _GROUP_AFTER_RE.search(after):
        return False
    if _MONEY_BEFORE_RE.search(before) or _MONEY_AFTER_RE.search(after):
        return False
    if _ID_BEFORE_RE.search(before) or _POSTAL_BEFORE_RE.search(before):
        return False
    return not (end - start == 5 and _STATE_BEFORE_RE.search(before))


def _alone_on_line(text: str, start: int, end: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : len(text) if line_end == -1 else line_end]
    return line.strip() == text[start:end]


def urls_in(text: str) -> list[str]:
    """URLs written out in plain text, without trailing punctuation."""
    found = (match.group().rstrip(_URL_TRAILING) for match in _URL_RE.finditer(text))
    return [url for url, _ in zip(found, range(_MAX_LINKS), strict=False)]


def find_link(urls: list[str]) -> str | None:
    """The first LinkedIn verification URL (canonical form), after unwrapping redirectors."""
    for url in urls[:_MAX_LINKS]:
        if not _may_verify(url):
            continue
        canonical = verification_link(unwrap(url.strip()))
        if canonical is not None:
            return canonical
    return None


def _may_verify(url: str) -> bool:
    """Cheap filter: the path names a verification page, or a wrapper's query does.

    Only the path counts for a direct link: LinkedIn's tracking parameters say
    "verification" on every link of a verification mail.
    """
    path = url.partition("?")[0].lower()
    if any(hint in path for hint in _LINK_HINTS):
        return True
    wrapped = any(host in path for host in _WRAPPER_HINTS)
    return wrapped and any(hint in url.lower() for hint in _WRAPPED_LINK_HINTS)


def unwrap(url: str) -> str:
    """Undo rewriting wrappers such as Outlook Safe Links and Google's /url redirect.

    The wrapper is only unpacked here; what comes out is judged by
    ``verification_link`` as a browser would read it.
    """
    for _ in range(_MAX_UNWRAP):
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return url
        query = parse_qs(parts.query)
        if any(host == h or host.endswith("." + h) for h in _SAFE_LINK_HOSTS):
            inner = query.get("url", [""])[0]
        elif host in ("www.google.com", "google.com") and parts.path == "/url":
            inner = query.get("q", [""])[0]
        else:
            return url
        if not inner:
            return url
        url = unquote(inner) if "%3A" in inner[:12].upper() else inner
    return url


def is_verification_link(url: str) -> bool:
    """True when ``verification_link`` accepts ``url``."""
    return verification_link(url) is not None


def verification_link(url: str) -> str | None:
    """The WHATWG serialization of a LinkedIn verification URL, or None.

    Judged as a browser parses it (ada, the WHATWG URL parser), and refused
    whenever the written form could be read two ways: backslashes, userinfo,
    explicit ports, a trailing dot, dot segments (raw or percent-encoded),
    ``;`` parameters, control characters, anything but https. The host is
    exactly www.linkedin.com or linkedin.com; the path is on the verification
    allowlist (``_VERIFICATION_PATH_RE``), directly, in its ``/comm/`` tracking
    form, or as a ``/e/v2`` tracking redirect whose action is one of them.
    """
    written = _written_parts(url)
    if written is None:
        return None
    authority, path = written
    try:
        parsed = ada_url.parse_url(url)
    except ValueError:
        return None
    if (
        parsed["protocol"] != "https:"
        or parsed["username"]
        or parsed["password"]
        or parsed["port"]
        or parsed["hostname"] not in _LINK_HOSTS
        or parsed["hostname"] != authority.lower()
        or parsed["pathname"] != path
    ):
        return None
    if not _verification_target(path, parsed["search"]):
        return None
    return str(parsed["href"])


def _written_parts(url: str) -> tuple[str, str] | None:
    """(authority, path) as written, when nothing in them is ambiguous; else None."""
    if len(url) > _MAX_URL_CHARS or _AMBIGUOUS_CHARS_RE.search(url):
        return None
    if url[:8].lower() != "https://":
        return None
    rest = url[8:]
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    path = tail
    for mark in "?#":
        found = path.find(mark)
        if found != -1:
            path = path[:found]
    if not path.startswith("/") or ";" in path or _ENCODED_DOTS_RE.search(path):
        return None
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    return authority, path


def _verification_target(path: str, search: str) -> bool:
    lowered = path.lower().rstrip("/")
    if lowered.startswith("/comm/"):
        lowered = lowered[len("/comm") :]
    if _VERIFICATION_PATH_RE.fullmatch(lowered):
        return True
    if lowered != "/e/v2":
        return False
    actions = parse_qs(search.removeprefix("?")).get("a", [])
    if len(actions) != 1:  # none, or two that a server might read either way
        return False
    return _VERIFICATION_ACTION_RE.fullmatch(actions[0].lower()) is not None
