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

from otp_bot.mail.trust import domain_is_linkedin

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
_GROUP_BEFORE_RE = re.compile(r"\d[ .,:/\-]?\Z|[+(]\Z")
_GROUP_AFTER_RE = re.compile(r"^(?:[ .,:/\-]?\d|\))")
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
# What may stand between keyword and code in a sentence: a short lead-in ending
# in a colon or a verb ("code: N", "code is N", "código é N", "Code lautet N"),
# or, before the keyword, a verb ("N is your code", "N es tu código").
_LEAD_IN_RE = re.compile(
    r"\s*|[^\n.!?]{0,48}(?::|\b(?:is|é|est|ist|lautet|es|è|sono|são))\s*:?\s*", re.IGNORECASE
)
_LEAD_OUT_RE = re.compile(r"\s+(?:is|é|est|ist|es|è)\b[^\n.!?]{0,32}", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}>'\""
_SAFE_LINK_HOSTS = ("safelinks.protection.outlook.com",)
_VERIFY_SEGMENT_RE = re.compile(r"confirm|verif", re.IGNORECASE)
_EXCLUDED_SEGMENT_RE = re.compile(
    r"help|unsub|login|signin|sign-in|logout|password|reset|emimp|report|^in$|^pub$",
    re.IGNORECASE,
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
        code = _code_in(_URL_RE.sub(" ", text[:_MAX_SCAN_CHARS]))
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
    """The first LinkedIn confirmation/verification URL, after unwrapping redirectors."""
    for url in urls[:_MAX_LINKS]:
        lowered = url.lower()
        if "confirm" not in lowered and "verif" not in lowered:
            continue  # cheap: a wrapped link still shows its target's path, encoded
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
