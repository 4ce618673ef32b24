"""Find a one-time code and a verification link in decoded e-mail text.

A code is a run of 4 to 8 ASCII digits (full-width digits are read as
ASCII) near a word for "code", "PIN" or "verification" in one of LinkedIn's
languages, that is not part of a larger number (phone, date, time, price,
postal code, id) and not inside a URL. Layouts read: keyword then digits
("code: N", "code is N", "código de verificação N"), digits then keyword
("N is your code", "N는 인증 코드"), the code alone on its line below the
keyword. Links are judged in ``otp_bot.mail.links``. Which mails are read at
all is decided before this module (``otp_bot.mail.verification``).
"""

from __future__ import annotations

import re

# Stems of "code", "PIN", "verify/confirm" in en, de, fr, es, pt, it, nl, sv,
# da, nb, pl, tr, ja, zh and ko; a Latin stem takes the rest of its word along
# ("verificação", "kodunuz"), never digits. Compounds (Bestätigungscode,
# verificatiecode) contain a stem already.
# The lookahead lists the first letter of every keyword below (case-folded by
# IGNORECASE): without it each position of a long text tries every keyword in
# turn, about 15 ms per 64 KB; with it a position that starts none fails at once.
_KEYWORD_RE = re.compile(
    r"(?=[ckpovbwdコ確認验驗确代인코확암])"
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
URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"'\])]++", re.IGNORECASE)
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
# Work bounds for hostile text: LinkedIn's code sits in the first few KB after
# one of the first few keywords.
_MAX_SCAN_CHARS = 64 * 1024
_MAX_KEYWORDS = 32


def find_code(subject: str, texts: list[str]) -> str | None:
    """The code in the subject if it has one, else the first one found in ``texts``."""
    for text in [subject, *texts]:
        code = _code_in(URL_RE.sub(" ", text[:_MAX_SCAN_CHARS].translate(_FULL_WIDTH)))
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
