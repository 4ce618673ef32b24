"""Whether an e-mail really comes from LinkedIn (docs/trust.md).

Two checks, both pure:

- the From addr-spec is at ``linkedin.com`` or a subdomain, by exact label
  comparison (display names, look-alikes and punycode never count);
- the topmost ``Authentication-Results`` header, or the topmost one from an
  authserv-id the operator trusts (``OTP_BOT_TRUSTED_AUTHSERV_IDS``), shows
  ``dkim=pass`` with ``header.d``/``header.i`` under linkedin.com, or
  ``dmarc=pass`` for such a ``header.from``. Other lower headers are ignored:
  anyone can add them before the receiving server prepends its own
  (RFC 8601, section 7.2).
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from otp_bot.mail import authresults

LINKEDIN_DOMAIN = "linkedin.com"

# Host names are ASCII letters, digits and hyphens; anything else (Unicode
# homoglyphs, quotes, brackets) is not a domain we would ever trust.
_DOMAIN_RE = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")


def domain_is_linkedin(domain: str) -> bool:
    """True for ``linkedin.com`` and its subdomains, by whole labels only."""
    domain = domain.strip().lower().removesuffix(".")
    if not _DOMAIN_RE.fullmatch(domain):
        return False
    return domain == LINKEDIN_DOMAIN or domain.endswith("." + LINKEDIN_DOMAIN)


def parse_sender(from_header: str) -> str | None:
    """The single addr-spec of a From header with its domain lower-cased, else None."""
    addresses = [addr for _name, addr in getaddresses([from_header]) if addr]
    if len(addresses) != 1:
        return None
    local, at, domain = addresses[0].rpartition("@")
    if not at or not local or not domain:
        return None
    return f"{local}@{domain.lower()}"


def sender_domain_trusted(from_header: str) -> bool:
    """Cheap pre-filter on a raw From header: is its one address at linkedin.com?"""
    sender = parse_sender(from_header)
    return sender is not None and domain_is_linkedin(sender.rpartition("@")[2])


def authentication_verdict(
    headers: list[str], trusted_authserv_ids: frozenset[str] = frozenset()
) -> str | None:
    """None when a deciding Authentication-Results header vouches for LinkedIn, else why not.

    ``headers`` are the Authentication-Results values, topmost first. Deciding
    headers: the topmost, and the topmost one from each trusted authserv-id
    (lower ones with the same id may be the sender's forgeries).
    """
    if not headers:
        return "no_authentication_results"
    deciding = _deciding_headers(headers, trusted_authserv_ids)
    if any(_vouches(r.method, r.result, r.props) for h in deciding for r in h.results):
        return None
    seen = ", ".join(f"{r.method}={r.result}" for r in deciding[0].results) or "none"
    return f"dkim_dmarc_not_pass: {seen}"


def _deciding_headers(headers: list[str], trusted_ids: frozenset[str]) -> list[authresults.Header]:
    topmost = authresults.parse(headers[0])
    wanted = {authserv.lower() for authserv in trusted_ids} - {topmost.authserv_id}
    deciding = [topmost]
    for value in headers[1:]:
        if not wanted:
            break
        header = authresults.parse(value)
        if header.authserv_id in wanted:
            wanted.discard(header.authserv_id)
            deciding.append(header)
    return deciding


def _vouches(method: str, result: str, props: dict[str, str]) -> bool:
    if result != "pass":
        return False
    if method == "dkim":
        signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
        return domain_is_linkedin(signer)
    if method == "dmarc":
        return domain_is_linkedin(props.get("header.from", "").rpartition("@")[2])
    return False
