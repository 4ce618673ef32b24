"""``otp-bot check``'s dkim line against a real Dovecot, with keys answered on loopback DNS."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_bot.daemon.dkimcheck import report_dkim
from tests import dovecot as dc
from tests.dkim_helpers import DnsServer, Signer
from tests.emails import make_corpus as corpus
from tests.mailbox_helpers import settings_for

pytestmark = [pytest.mark.dovecot]


def plain_postfix_mail() -> bytes:
    """LinkedIn's PIN mail as a Postfix + Dovecot server without milters stores it."""
    return (
        corpus.headers("Ana, here's your PIN", auth="")
        + corpus.part(
            "text/plain", "Please use this verification code to complete your sign in: 528104\n"
        )
    ).encode()


async def report(settings_mode: str, server: dc.Dovecot, state: Path, dns_port: int) -> str:
    lines: list[str] = []
    settings = settings_for(
        server,
        state,
        dkim_verify=settings_mode,
        dkim_nameservers=[f"127.0.0.1:{dns_port}"],
    )
    await report_dkim(settings, lines.append)
    [line] = lines
    return line


async def test_check_reports_the_mode_and_the_newest_linkedin_mail(
    dovecot: dc.Dovecot, tmp_path: Path
) -> None:
    """self: the newest LinkedIn mail (signed, no Authentication-Results) verifies; server mode
    says it does not and suggests self; an empty folder says so."""
    signer = Signer.create(tmp_path)
    dns = await DnsServer({signer.name: signer.record}).start()
    try:
        empty = await report("self", dovecot, tmp_path, dns.port)
        assert empty == "dkim     mode self: no mail from linkedin.com in the folder yet"
        dovecot.append(signer.sign(plain_postfix_mail()))
        dovecot.append(corpus.part("text/plain", "not from LinkedIn\n").encode())
        own = await report("self", dovecot, tmp_path, dns.port)
        assert own == (
            'dkim     mode self: newest LinkedIn mail ("Ana, here\'s your PIN") verified, '
            "own DKIM check pass"
        )
        assert dns.queries == [signer.name]
        server = await report("server", dovecot, tmp_path, dns.port)
        assert server.startswith("dkim     mode server: newest LinkedIn mail")
        assert "NOT verified: no_authentication_results" in server
        assert "try OTP_BOT_DKIM_VERIFY=self" in server
    finally:
        dns.close()
