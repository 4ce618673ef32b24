"""A local DKIM signer and the DNS answers for it: tests never reach the network.

``Signer`` holds an RSA key made once per test session with ``openssl``; its
``record`` is the TXT value LinkedIn would publish at
``<selector>._domainkey.linkedin.com``. ``DnsServer`` answers those TXT
queries on a loopback UDP port (dnspython's message codec), so the daemon's
real resolver path is exercised end to end.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import dkim
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

SIGNED = (b"from", b"subject", b"to", b"date", b"message-id")


@dataclass(frozen=True)
class Signer:
    """Signs mail as ``d=<domain>; s=<selector>`` with a session-wide local key."""

    private_pem: bytes
    public_der: bytes
    selector: bytes = b"d2048-test"
    domain: bytes = b"linkedin.com"

    @classmethod
    def create(cls, workdir: Path) -> Signer:
        key = workdir / "dkim.pem"
        subprocess.run(
            ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        public = subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
        return cls(key.read_bytes(), public)

    @property
    def name(self) -> bytes:
        return self.selector + b"._domainkey." + self.domain + b"."

    @property
    def record(self) -> bytes:
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(self.public_der)

    def sign(
        self,
        raw: bytes,
        *,
        headers: tuple[bytes, ...] = SIGNED,
        domain: bytes | None = None,
        length: bool = False,
    ) -> bytes:
        """``raw`` with a DKIM-Signature on top."""
        signature = dkim.sign(
            raw,
            self.selector,
            domain or self.domain,
            self.private_pem,
            include_headers=list(headers),
            length=length,
        )
        return bytes(signature) + raw

    def lookup(self, name: bytes) -> bytes | None:
        return self.record if name.lower() == self.name else None


@dataclass
class DnsServer(asyncio.DatagramProtocol):
    """Answers TXT queries from ``records`` on 127.0.0.1; counts the queries."""

    records: dict[bytes, bytes]
    queries: list[bytes] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    port: int = 0

    async def start(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, ("127.0.0.1", 0))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        query = dns.message.from_wire(data)
        answer = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().encode().lower()
        self.queries.append(name)
        record = self.records.get(name)
        if record is None or question.rdtype != dns.rdatatype.TXT:
            answer.set_rcode(dns.rcode.NXDOMAIN)
        else:
            chunks = " ".join(
                f'"{record[i : i + 255].decode()}"' for i in range(0, len(record), 255)
            )
            answer.answer.append(dns.rrset.from_text(question.name, 3600, "IN", "TXT", chunks))
        assert self.transport is not None
        self.transport.sendto(answer.to_wire(), addr)
