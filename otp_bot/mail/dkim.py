"""LinkedIn's DKIM signature checked by the bot itself (``OTP_BOT_DKIM_VERIFY=self|both``).

Pure: the public key comes from a ``KeyLookup`` the caller passes in (the
daemon's cached resolver in ``otp_bot.daemon.dkimkeys``, a test's own table);
``dkimpy`` is given that function as its ``dnsfunc``, so nothing here reaches
the network. (``import dkim`` loads dnspython for its default resolver, which
is never called.)

A mail verifies when one of its first ``MAX_SIGNATURES`` DKIM-Signature
headers

- is from ``linkedin.com`` or a subdomain (``d=``, aligned with the From
  domain, which trust has already checked is linkedin.com);
- covers From and Subject (``h=``), and has no ``l=`` body length (which
  would let anyone append text after the signed part);
- verifies with the key the lookup returns (RSA keys of 1024 bits or more).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from otp_bot.mail.parts import split_head
from otp_bot.mail.trust import domain_is_linkedin

# A DNS name (b"selector._domainkey.linkedin.com.") -> its TXT record, or None.
KeyLookup = Callable[[bytes], bytes | None]

MAX_SIGNATURES = 4
# dkimpy parses the whole message; LinkedIn's mails are well under this.
MAX_SIGNED_BYTES = 2 << 20
_REQUIRED = (b"from", b"subject")


@dataclass(frozen=True, slots=True)
class Signature:
    """One DKIM-Signature header's tags that decide whether it is worth verifying."""

    index: int  # among the DKIM-Signature headers, top first
    domain: str
    selector: str
    refusal: str | None  # why it cannot vouch for LinkedIn, before any key is fetched

    @property
    def key_name(self) -> bytes:
        return f"{self.selector}._domainkey.{self.domain}.".encode()


def signatures(headers: Sequence[tuple[str, str]]) -> list[Signature]:
    """The first ``MAX_SIGNATURES`` DKIM-Signature headers, read (not verified)."""
    found: list[Signature] = []
    values = [value for name, value in headers if name.lower() == "dkim-signature"]
    for index, value in enumerate(values[:MAX_SIGNATURES]):
        try:
            tags = parse_tag_value(value.encode("utf-8", "replace"))
        except InvalidTagValueList:
            found.append(Signature(index, "", "", "unreadable tags"))
            continue
        domain = tags.get(b"d", b"").decode("ascii", "replace").strip().lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace").strip()
        found.append(Signature(index, domain, selector, _refusal(tags, domain, selector)))
    return found


def _refusal(tags: dict[bytes, bytes], domain: str, selector: str) -> str | None:
    if not domain_is_linkedin(domain):
        return f"d={domain[:60]} is not linkedin.com"
    if not selector or not selector.replace("-", "").replace("_", "").isalnum():
        return "no usable selector"
    signed = {name.strip().lower() for name in tags.get(b"h", b"").split(b":")}
    missing = [name.decode() for name in _REQUIRED if name not in signed]
    if missing:
        return f"h= does not cover {', '.join(missing)}"
    if b"l" in tags:
        return "l= body length (unsigned text could follow)"
    return None


def key_names(headers: Sequence[tuple[str, str]]) -> list[bytes]:
    """The DNS names whose keys a check of this mail needs (the shell resolves them first)."""
    return [s.key_name for s in signatures(headers) if s.refusal is None]


def key_names_of(raw: bytes) -> list[bytes]:
    """``key_names`` from raw mail bytes (the header block only is parsed)."""
    head, _ = split_head(raw)
    return key_names([(name, str(value)) for name, value in head.items()])


def verify(raw: bytes, headers: Sequence[tuple[str, str]], lookup: KeyLookup) -> str | None:
    """None when a LinkedIn signature covering From and Subject verifies, else why not."""
    candidates = signatures(headers)
    if not candidates:
        return "dkim_self: no DKIM-Signature"
    usable = [s for s in candidates if s.refusal is None]
    if not usable:
        return f"dkim_self: {candidates[0].refusal}"
    if len(raw) > MAX_SIGNED_BYTES:
        return "dkim_self: message too large to verify"

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return lookup(name)

    failures: list[str] = []
    try:
        checker = dkim.DKIM(raw, minkey=1024)
    except Exception as exc:  # noqa: BLE001 - dkimpy's parser on hostile bytes: any error is "no"
        return f"dkim_self: unreadable message ({type(exc).__name__})"
    for signature in usable:
        where = f"{signature.domain} ({signature.selector})"
        try:
            if checker.verify(idx=signature.index, dnsfunc=dnsfunc):
                return None
            failures.append(f"{where} does not verify")
        except Exception as exc:  # noqa: BLE001 - key, base64 or format errors all mean "no"
            failures.append(f"{where}: {str(exc).partition(' (')[0][:80]}")
    return f"dkim_self: {failures[0]}"
