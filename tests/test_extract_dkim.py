"""OTP_BOT_DKIM_VERIFY=self|both: LinkedIn's signature verified here, keys answered locally."""

from __future__ import annotations

import pytest

from otp_bot.mail.dkim import key_names_of
from otp_bot.mail.extract import Evidence, extract
from otp_bot.solve.dkimkeys import NEGATIVE_TTL, DkimKeys, dnspython_resolver
from tests.dkim_helpers import DnsServer, Signer
from tests.emails import make_corpus as corpus

BODY = corpus.part(
    "text/plain", "Please use this verification code to complete your sign in: 528104\n"
)
FAILING_AR = (
    "Authentication-Results: mx.example.org; dkim=fail (bad signature)"
    " header.d=linkedin.com; dmarc=fail header.from=linkedin.com\r\n"
)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    return Signer.create(tmp_path_factory.mktemp("dkim"))


def plain_postfix_mail(subject: str = "Ana, here's your PIN", auth: str = "") -> bytes:
    """LinkedIn's mail as a Postfix + Dovecot server without filters stores it."""
    return (corpus.headers(subject, auth=auth) + BODY).encode()


def read_self(raw: bytes, signer: Signer) -> Evidence:
    return extract(raw, server_results=False, dkim_keys=signer.lookup)


def test_self_mode_trusts_signed_mail_without_authentication_results(signer: Signer) -> None:
    """A server that writes no Authentication-Results: the bot's own check makes it trusted."""
    found = read_self(signer.sign(plain_postfix_mail()), signer)
    assert (found.trusted, found.code, found.dkim, found.reason) == (True, "528104", "pass", None)


def test_self_mode_ignores_what_the_server_writes(signer: Signer) -> None:
    """In self mode a failing (or forged) Authentication-Results decides nothing."""
    found = read_self(signer.sign(plain_postfix_mail(auth=FAILING_AR)), signer)
    assert (found.trusted, found.code) == (True, "528104")


def test_both_mode_needs_the_server_and_the_signature(signer: Signer) -> None:
    """both: a failing server verdict refuses a validly signed mail; with a pass it is trusted."""
    failing = signer.sign(plain_postfix_mail(auth=FAILING_AR))
    found = extract(failing, server_results=True, dkim_keys=signer.lookup)
    assert (found.trusted, found.reason) == (False, "dmarc_not_pass: dmarc=fail for linkedin.com")
    passing = signer.sign(plain_postfix_mail(auth=corpus.GMAIL))
    found = extract(passing, server_results=True, dkim_keys=signer.lookup)
    assert (found.trusted, found.code, found.dkim) == (True, "528104", "pass")
    unsigned = plain_postfix_mail(auth=corpus.GMAIL)
    found = extract(unsigned, server_results=True, dkim_keys=signer.lookup)
    assert (found.trusted, found.reason) == (False, "dkim_self: no DKIM-Signature")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda raw: raw.replace(b"528104", b"528105"), "dkim_self: linkedin.com (d2048-test):"),
        (
            lambda raw: raw.replace(b"Subject: Ana, here's your PIN", b"Subject: Ana, PIN 111111"),
            "dkim_self: linkedin.com (d2048-test) does not verify",
        ),
    ],
)
def test_self_mode_refuses_tampered_mail(signer: Signer, tamper: object, reason: str) -> None:
    """A changed body or subject breaks the signature: not trusted, no code."""
    assert callable(tamper)
    found = read_self(tamper(signer.sign(plain_postfix_mail())), signer)
    assert (found.trusted, found.code) == (False, None)
    assert (found.reason or "").startswith(reason)


def test_signature_must_cover_from_and_subject(signer: Signer) -> None:
    """A signature that leaves the Subject unsigned vouches for nothing a reader sees."""
    raw = signer.sign(plain_postfix_mail(), headers=(b"from", b"to", b"date"))
    found = read_self(raw, signer)
    assert (found.trusted, found.reason) == (False, "dkim_self: h= does not cover subject")


def test_signature_must_be_linkedins(signer: Signer) -> None:
    """d= must be linkedin.com (aligned with From); another domain's valid signature is not."""
    raw = signer.sign(plain_postfix_mail(), domain=b"linkedin.com.evil.example")
    found = read_self(raw, signer)
    assert found.reason == "dkim_self: d=linkedin.com.evil.example is not linkedin.com"


def test_body_length_tag_is_refused(signer: Signer) -> None:
    """l= lets anyone append unsigned text after the signed body: refused."""
    found = read_self(signer.sign(plain_postfix_mail(), length=True), signer)
    assert found.reason == "dkim_self: l= body length (unsigned text could follow)"


def test_unknown_key_is_not_trusted(signer: Signer) -> None:
    """No key in DNS for the selector: not trusted, whatever the mail says."""
    found = extract(
        signer.sign(plain_postfix_mail()), server_results=False, dkim_keys=lambda n: None
    )
    assert found.trusted is False
    assert (found.reason or "").startswith("dkim_self: linkedin.com (d2048-test)")


def test_prepended_second_subject_on_a_signed_mail_is_refused(signer: Signer) -> None:
    """A replayed signed mail with another Subject on top is ambiguous: not trusted."""
    raw = b"Subject: Your verification code 999999\r\n" + signer.sign(plain_postfix_mail())
    found = read_self(raw, signer)
    assert (found.trusted, found.reason) == (False, "repeated_header: 2 Subject headers")


def test_member_mail_signed_by_linkedin_is_still_not_read(signer: Signer) -> None:
    """A genuinely signed member message yields no code: the allowlists come after the trust."""
    raw = (
        corpus.headers(
            "Bruno: your verification code 661204",
            auth="",
            sender="Bruno via LinkedIn <messages-noreply@linkedin.com>",
        )
        + corpus.part("text/plain", "Your verification code: 661204\n")
    ).encode()
    found = read_self(signer.sign(raw), signer)
    assert (found.trusted, found.code, found.dkim) == (True, None, "pass")
    assert (found.reason or "").startswith("not_a_verification_mail: sender messages-noreply@")


def test_key_names_are_only_linkedins(signer: Signer) -> None:
    """Only aligned, usable signatures ask for a key: a hostile d= never makes the bot query."""
    assert key_names_of(signer.sign(plain_postfix_mail())) == [signer.name]
    assert key_names_of(signer.sign(plain_postfix_mail(), domain=b"evil.example")) == []


async def test_keys_are_fetched_over_dns_and_cached(signer: Signer) -> None:
    """The daemon's resolver asks a (loopback) DNS server once per TTL; misses are cached too."""
    server = await DnsServer({signer.name: signer.record}).start()
    now = [0.0]
    try:
        keys = DkimKeys(dnspython_resolver([f"127.0.0.1:{server.port}"]), clock=lambda: now[0])
        await keys.fetch([signer.name, signer.name])
        await keys.fetch([signer.name, b"other._domainkey.linkedin.com."])
        await keys.fetch([b"other._domainkey.linkedin.com.", b"x._domainkey.evil.example."])
        assert keys.lookup(signer.name) == signer.record
        assert server.queries == [signer.name, b"other._domainkey.linkedin.com."]
        now[0] += NEGATIVE_TTL + 1  # the miss expires, the hit (TTL 3600) does not
        await keys.fetch([signer.name, b"other._domainkey.linkedin.com."])
        assert len(server.queries) == 3
        found = read_self(signer.sign(plain_postfix_mail()), signer)
        assert (
            extract(
                signer.sign(plain_postfix_mail()), server_results=False, dkim_keys=keys.lookup
            ).dkim
            == found.dkim
            == "pass"
        )
    finally:
        server.close()


def test_evidence_carries_the_own_dkim_outcome(signer: Signer) -> None:
    """Evidence.to_dict carries the own DKIM outcome (None when not checked)."""
    found = read_self(signer.sign(plain_postfix_mail()), signer)
    assert found.to_dict()["dkim"] == "pass"
    assert extract(plain_postfix_mail(auth=corpus.GMAIL)).to_dict()["dkim"] is None
