"""Verification links in e-mail text and HTML, judged as a browser parses them.

A link is a LinkedIn verification URL (``verification_link``): parsed with
ada, the WHATWG URL parser, refused whenever its written form could be read
two ways, its host exactly www.linkedin.com or linkedin.com, its path on an
allowlist of verification pages. Rewriting wrappers (Outlook Safe Links,
Google's /url) are unwrapped first. What is kept is the canonical WHATWG
serialization; nothing here ever fetches a URL.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import ada_url

from otp_bot.mail.codes import URL_RE

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
# LinkedIn's mails carry fewer than 100 links.
_MAX_LINKS = 256
# Only an HTML part that names one of LinkedIn's verification pages (directly,
# percent-encoded in a wrapper, or as a /e/v2 action) is flattened for its link:
# flattening costs more than everything else together, and tracking parameters
# say "verification" on every link of such a mail.
_HTML_LINK_HINT_RE = re.compile(
    r"psettings(?:/|%2f)email(?:/|%2f)(?:confirm|verify|work-email)|verify(?:/|%2f|-)work-email|"
    r"job-posting(?:/|%2f)verify-email|\ba=(?:psettings-email-confirm|email-confirm|confirm-email|"
    r"email-verification|verify-email|work-email-verification|verify-work-email|"
    r"job-posting-verify-email)"
)  # searched in lower-cased markup
_HTML_LINK_MARKERS = (
    "psettings/email/",
    "psettings%2femail%2f",
    "work-email",
    "job-posting",
    "/e/v2",
    "e%2fv2",
)


def names_verification_page(markup: str) -> bool:
    """Cheap test: does this HTML mention a verification page at all?"""
    lowered = markup.lower()  # C speed; then plain substring tests before the pattern
    if not any(marker in lowered for marker in _HTML_LINK_MARKERS):
        return False
    return _HTML_LINK_HINT_RE.search(lowered) is not None


def urls_in(text: str) -> list[str]:
    """URLs written out in plain text, without trailing punctuation."""
    found = (match.group().rstrip(_URL_TRAILING) for match in URL_RE.finditer(text))
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
