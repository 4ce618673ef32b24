"""DKIM public keys from DNS, cached: the I/O half of ``OTP_BOT_DKIM_VERIFY=self|both``.

``otp_bot.mail.dkim`` stays pure: before a mail is read, the intake asks
``fetch`` for the key names its LinkedIn signatures need (asyncio, bounded by
``TIMEOUT``), then hands ``lookup`` (a cache read, no I/O) to ``extract``.
Only names under ``._domainkey.linkedin.com.`` are ever looked up, so a
hostile mail cannot make the bot query names of its choosing. Answers are
kept for their TTL (between ``MIN_TTL`` and ``MAX_TTL``); a missing record or
a failed lookup is remembered for ``NEGATIVE_TTL``, so a flood of mail
signed with an unknown selector costs one query per name and window.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from otp_bot.config import parse_nameserver

# (TXT record or None, TTL in seconds)
Resolve = Callable[[bytes], Awaitable[tuple[bytes | None, float]]]

TIMEOUT = 5.0
MIN_TTL = 60.0
MAX_TTL = 86_400.0
NEGATIVE_TTL = 300.0
MAX_ENTRIES = 256
_SUFFIX = b"._domainkey.linkedin.com."


@dataclass(slots=True)
class _Entry:
    record: bytes | None
    expires: float


class DkimKeys:
    """A small TTL cache of DKIM key records in front of a resolver."""

    def __init__(
        self,
        resolve: Resolve,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._clock = clock
        self._cache: dict[bytes, _Entry] = {}
        self.queries = 0  # DNS queries sent (the benchmark and tests read it)

    @classmethod
    def from_nameservers(cls, nameservers: list[str]) -> DkimKeys:
        """Keys looked up through ``nameservers`` (``ip`` or ``ip:port``), or the system's."""
        return cls(dnspython_resolver(nameservers))

    async def fetch(self, names: Iterable[bytes]) -> None:
        """Resolve the names not cached yet (one at a time: a mail has one or two)."""
        now = self._clock()
        for name in names:
            if not _allowed(name):
                continue
            entry = self._cache.get(name.lower())
            if entry is not None and entry.expires > now:
                continue
            self.queries += 1
            record, ttl = await self._resolve(name)
            ttl = min(max(ttl, MIN_TTL), MAX_TTL) if record is not None else NEGATIVE_TTL
            self._remember(name.lower(), _Entry(record, self._clock() + ttl))

    def lookup(self, name: bytes) -> bytes | None:
        """The cached record for ``name`` (what ``fetch`` found), without any I/O."""
        entry = self._cache.get(name.lower())
        return entry.record if entry is not None else None

    def _remember(self, name: bytes, entry: _Entry) -> None:
        if len(self._cache) >= MAX_ENTRIES and name not in self._cache:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v.expires > now}
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
        self._cache[name] = entry


def _allowed(name: bytes) -> bool:
    return name.lower().endswith(_SUFFIX) and len(name) <= 253


def dnspython_resolver(nameservers: list[str]) -> Resolve:
    """A ``Resolve`` through dnspython's asyncio resolver (the system's, or ``nameservers``)."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [_nameserver(spec) for spec in nameservers]

    async def resolve(name: bytes) -> tuple[bytes | None, float]:
        try:
            answer = await resolver.resolve(
                name.decode("ascii"), dns.rdatatype.TXT, lifetime=TIMEOUT, search=False
            )
        except (dns.exception.DNSException, UnicodeDecodeError):
            return None, NEGATIVE_TTL
        for rdata in answer:
            return b"".join(rdata.strings), float(answer.rrset.ttl if answer.rrset else 0)
        return None, NEGATIVE_TTL

    return resolve


def _nameserver(spec: str) -> dns.nameserver.Nameserver:
    host, port = parse_nameserver(spec)
    return dns.nameserver.Do53Nameserver(host, port)
