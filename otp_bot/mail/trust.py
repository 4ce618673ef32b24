"""Whether an e-mail really comes from LinkedIn (docs/trust.md).

All checks are pure:

- the headers a reader sees once (From, Sender, Subject, Date, To,
  Message-ID) appear once: with two Subjects, DKIM may cover one while a client
  shows the other;
- the From addr-spec is at ``linkedin.com`` or a subdomain, by exact label
  comparison (display names, look-alikes and punycode never count); the From
  value is refused before parsing when it is longer than ``MAX_FROM_CHARS`` or
  nests comments deeper than ``MAX_FROM_NESTING`` (the stdlib's address parser
  recurses once per ``(``);
- the deciding ``Authentication-Results`` group vouches for LinkedIn. The
  group is the topmost header (or the topmost one from an authserv-id the
  operator trusts, ``OTP_BOT_TRUSTED_AUTHSERV_IDS``) together with the
  headers right below it that carry the same authserv-id, up to the next
  ``Received`` line: Postfix with OpenDKIM and OpenDMARC writes one header per
  milter, all above its own ``Received`` line. Anything below a ``Received``
  line was there before this server took the mail, so anyone could have
  written it (RFC 8601, section 7.2). The group vouches when it is readable,
  no two results of one method disagree, no dmarc result for linkedin.com is
  anything but pass, and a ``dkim=pass`` aligned with linkedin.com or a
  ``dmarc=pass`` for it is there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import getaddresses

from otp_bot.mail import authresults

LINKEDIN_DOMAIN = "linkedin.com"
# Headers whose second copy makes the mail ambiguous (RFC 5322 3.6 allows one each).
SINGLE_HEADERS = ("from", "sender", "subject", "date", "to", "message-id")
MAX_FROM_CHARS = 998  # RFC 5322's line limit; LinkedIn's From is under 80
MAX_FROM_NESTING = 4
# A ``Received`` header in the trace given to ``authentication_verdict``.
RECEIVED = None

# Host names are ASCII letters, digits and hyphens; anything else (Unicode
# homoglyphs, quotes, brackets) is not a domain we would ever trust.
_DOMAIN_RE = re.compile(r"[a-z0-9-]++(?:\.[a-z0-9-]++)++")
_PARENS_RE = re.compile(r"[()\\]")


def domain_is_linkedin(domain: str) -> bool:
    """True for ``linkedin.com`` and its subdomains, by whole labels only."""
    domain = domain.strip().lower().removesuffix(".")
    if not _DOMAIN_RE.fullmatch(domain):
        return False
    return domain == LINKEDIN_DOMAIN or domain.endswith("." + LINKEDIN_DOMAIN)


def parse_sender(from_header: str) -> str | None:
    """The single addr-spec of a From header with its domain lower-cased, else None."""
    if len(from_header) > MAX_FROM_CHARS or _nesting(from_header) > MAX_FROM_NESTING:
        return None
    addresses = [addr for _name, addr in getaddresses([from_header]) if addr]
    if len(addresses) != 1:
        return None
    local, at, domain = addresses[0].rpartition("@")
    if not at or not local or not domain:
        return None
    return f"{local}@{domain.lower()}"


def _nesting(value: str) -> int:
    """The deepest comment nesting, counting every ``(`` not escaped (linear)."""
    if "(" not in value:
        return 0
    deepest = depth = 0
    escaped = -1  # the position a backslash escapes
    for match in _PARENS_RE.finditer(value):
        at, char = match.start(), match.group()
        if at == escaped:
            continue
        if char == "\\":
            escaped = at + 1
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def sender_domain_trusted(from_header: str) -> bool:
    """Cheap pre-filter on a raw From header: is its one address at linkedin.com?"""
    sender = parse_sender(from_header)
    return sender is not None and domain_is_linkedin(sender.rpartition("@")[2])


def repeated_header(names: Sequence[str]) -> str | None:
    """``"2 Subject headers"`` when a header of ``SINGLE_HEADERS`` appears twice, else None."""
    counts: dict[str, int] = {}
    for name in names:
        lowered = name.lower()
        if lowered in SINGLE_HEADERS:
            counts[lowered] = counts.get(lowered, 0) + 1
    for name in SINGLE_HEADERS:
        if counts.get(name, 0) > 1:
            return f"{counts[name]} {_TITLES[name]} headers"
    return None


_TITLES = {
    "from": "From",
    "sender": "Sender",
    "subject": "Subject",
    "date": "Date",
    "to": "To",
    "message-id": "Message-ID",
}


def auth_trace(headers: Sequence[tuple[str, str]]) -> list[str | None]:
    """Authentication-Results values top to bottom, ``RECEIVED`` where a Received line is."""
    trace: list[str | None] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "authentication-results":
            trace.append(value)
        elif lowered == "received" and trace and trace[-1] is not RECEIVED:
            trace.append(RECEIVED)
    return trace


def authentication_verdict(
    trace: Sequence[str | None], trusted_authserv_ids: frozenset[str] = frozenset()
) -> str | None:
    """None when the deciding Authentication-Results vouch for LinkedIn, else why not.

    ``trace``: the values topmost first, with ``RECEIVED`` (None) where a
    Received line separates them (``auth_trace``).
    """
    groups = _deciding_groups(trace, trusted_authserv_ids)
    if not groups:
        return "no_authentication_results"
    vouched = False
    for group in groups:
        broken = _broken(group)
        if broken is not None:
            return broken
        vouched = vouched or any(_vouches(r) for h in group for r in h.results)
    if vouched:
        return None
    seen = ", ".join(f"{r.method}={r.result}" for r in _results(groups[0])) or "none"
    return f"dkim_dmarc_not_pass: {seen}"


def _deciding_groups(
    trace: Sequence[str | None], trusted_ids: frozenset[str]
) -> list[list[authresults.Header]]:
    """The topmost group, then the topmost group of each trusted authserv-id below it."""
    parsed: list[authresults.Header | None] = [
        None if value is RECEIVED else authresults.parse(value) for value in trace
    ]
    wanted = {authserv.lower() for authserv in trusted_ids}
    groups: list[list[authresults.Header]] = []
    for index, header in enumerate(parsed):
        if header is None:
            continue
        if groups and header.authserv_id not in wanted:
            continue
        wanted.discard(header.authserv_id)
        groups.append(_group(parsed, index))
        if not wanted:
            break
    return groups


def _group(parsed: list[authresults.Header | None], start: int) -> list[authresults.Header]:
    first = parsed[start]
    assert first is not None  # noqa: S101 - the caller passes a header's index
    group = [first]
    for header in parsed[start + 1 :]:
        if header is None:  # a Received line: what is below came with the mail
            break
        if header.authserv_id == first.authserv_id:
            group.append(header)
    return group


def _results(group: list[authresults.Header]) -> list[authresults.Result]:
    return [r for header in group for r in header.results]


def _broken(group: list[authresults.Header]) -> str | None:
    """Why this group cannot be believed at all: unreadable or contradicting itself."""
    for header in group:
        if header.error is not None:
            return f"authentication_results_unreadable: {header.error}"
    seen: dict[str, str] = {}
    for result in _results(group):
        earlier = seen.setdefault(result.method, result.result)
        if earlier != result.result:
            return f"conflicting_results: {result.method}={earlier} and {result.result}"
        if result.method == "dmarc" and result.result != "pass" and _for_linkedin(result):
            return f"dmarc_not_pass: dmarc={result.result} for linkedin.com"
    return None


def _vouches(result: authresults.Result) -> bool:
    if result.result != "pass":
        return False
    if result.method == "dkim":
        signer = result.props.get("header.d")
        if signer is None:
            signer = authresults.domain_of(result.props.get("header.i", ""))
        return domain_is_linkedin(signer)
    return result.method == "dmarc" and _for_linkedin(result)


def _for_linkedin(dmarc: authresults.Result) -> bool:
    return domain_is_linkedin(authresults.domain_of(dmarc.props.get("header.from", "")))
