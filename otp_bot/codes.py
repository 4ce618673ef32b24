"""Find a one-time code and a verification link in decoded e-mail text.

A code is a run of 4 to 8 digits near a word for "code" or "verification"
in one of LinkedIn's languages, that is not part of a larger number
(phone, date, time, price, postal code, id) and not inside a URL. A link is
a linkedin.com URL whose *path* asks to confirm or verify: the query string is
ignored because LinkedIn's tracking parameters say "verification" on every
link of such a mail, help and unsubscribe included.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from otp_bot.trust import domain_is_linkedin

# Words for "code", "PIN" and "verify/confirm" in en, pt, fr, de, es, nl, it.
# Compounds (Bestätigungscode, verificatiecode) contain "code" already.
_KEYWORD_RE = re.compile(
    r"c[oó]d(?:e|igo|ice)|\bpin\b|\botp\b|passcode|verifi|vérifi|bestätig|bevestig|"
    r"confirm|conferma",
    re.IGNORECASE,
)
# How far a code may sit from its keyword: LinkedIn puts it on the next line
# ("Your verification code" ... "042917") or just before ("042917 is your code").
_AFTER_WINDOW = 160
_BEFORE_WINDOW = 48
_CANDIDATE_RE = re.compile(r"(?<![\w$€£¥])\d{4,8}(?!\w)")
_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"'\])]+", re.IGNORECASE)
# Digit groups: another number joined by a space or punctuation (phone
# numbers, dates, times, decimals, thousands separators).
_GROUP_BEFORE_RE = re.compile(r"\d[ .,:/\-]?$|[+(]$")
_GROUP_AFTER_RE = re.compile(r"^(?:[ .,:/\-]?\d|\))")
_MONEY_BEFORE_RE = re.compile(r"(?:[$€£¥₹]|R\$|\b(?:USD|EUR|BRL|GBP|CHF))\s?$", re.IGNORECASE)
_MONEY_AFTER_RE = re.compile(r"^\s?(?:[$€£¥₹%]|(?:USD|EUR|BRL|GBP|CHF|euros?|reais)\b)", re.I)
_ID_BEFORE_RE = re.compile(r"(?:\b(?:id|ref|nr)\.?|\bno\.|n[º°]|#)\s*[:#]?\s*$", re.IGNORECASE)
_POSTAL_BEFORE_RE = re.compile(
    r"\b(?:zip|postal|post|cep|plz)[\s-]?(?:code|código)?\s*:?\s*$", re.IGNORECASE
)
# "Sunnyvale, CA 94085": a US state before five digits (case-sensitive on purpose).
_STATE_BEFORE_RE = re.compile(r"\b[A-Z]{2},? $")
_YEAR_CONTEXT_RE = re.compile(
    r"(?:©|\(c\)|copyright|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?)\s*$",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?)]}>'\""
_SAFE_LINK_HOSTS = ("safelinks.protection.outlook.com",)
_VERIFY_SEGMENT_RE = re.compile(r"confirm|verif", re.IGNORECASE)
_EXCLUDED_SEGMENT_RE = re.compile(
    r"help|unsub|login|signin|sign-in|logout|password|reset|emimp|report|^in$|^pub$",
    re.IGNORECASE,
)
_MAX_UNWRAP = 3


def find_code(subject: str, texts: list[str]) -> str | None:
    """The code in the subject if it has one, else the first one found in ``texts``."""
    for text in [subject, *texts]:
        code = _code_in(_URL_RE.sub(" ", text))
        if code is not None:
            return code
    return None


def _code_in(text: str) -> str | None:
    best: tuple[int, str] | None = None
    for keyword in _KEYWORD_RE.finditer(text):
        lo = max(0, keyword.start() - _BEFORE_WINDOW)
        hi = keyword.end() + _AFTER_WINDOW
        for match in _CANDIDATE_RE.finditer(text, lo, hi):
            if not _plausible(text, match.start(), match.end()):
                continue
            distance = (
                match.start() - keyword.end()
                if match.start() >= keyword.end()
                else 2 * (keyword.start() - match.end())
            )
            if best is None or distance < best[0]:
                best = (distance, match.group())
        if best is not None:
            return best[1]
    return None


def _plausible(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 24) : start]
    after = text[end : end + 12]
    if _GROUP_BEFORE_RE.search(before) or _GROUP_AFTER_RE.search(after):
        return False
    if _MONEY_BEFORE_RE.search(before) or _MONEY_AFTER_RE.search(after):
        return False
    if _ID_BEFORE_RE.search(before) or _POSTAL_BEFORE_RE.search(before):
        return False
    digits = text[start:end]
    if len(digits) == 5 and _STATE_BEFORE_RE.search(before):
        return False
    if len(digits) == 4 and digits[:2] in ("19", "20"):
        return not _YEAR_CONTEXT_RE.search(before) and _alone_on_line(text, start, end)
    return True


def _alone_on_line(text: str, start: int, end: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : len(text) if line_end == -1 else line_end]
    return line.strip() == text[start:end]


def urls_in(text: str) -> list[str]:
    """URLs written out in plain text, without trailing punctuation."""
    return [match.group().rstrip(_URL_TRAILING) for match in _URL_RE.finditer(text)]


def find_link(urls: list[str]) -> str | None:
    """The first LinkedIn confirmation/verification URL, after unwrapping redirectors."""
    for url in urls:
        unwrapped = unwrap(url.strip())
        if is_verification_link(unwrapped):
            return unwrapped
    return None


def unwrap(url: str) -> str:
    """Undo rewriting wrappers such as Outlook Safe Links and Google's /url redirect."""
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
    """A https linkedin.com URL whose path confirms or verifies, not help/unsubscribe/etc."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme.lower() != "https" or not domain_is_linkedin(host):
        return False
    segments = [s for s in parts.path.split("/") if s]
    if any(_EXCLUDED_SEGMENT_RE.search(s) for s in segments):
        return False
    return any(_VERIFY_SEGMENT_RE.search(s) for s in segments)
