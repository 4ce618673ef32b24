"""Mailbox errors in plain words, each with the setting to check: no Python names
(``gaierror``), no bytes literals (``b'[AUTHENTICATIONFAILED]'``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.imap.watcher import check_mailbox
from tests.dovecot import Dovecot
from tests.mailbox_helpers import settings_for

pytestmark = pytest.mark.dovecot

# What a user must never see: an exception class name or a bytes repr.
PYTHON_INTERNALS = re.compile(r"gaierror|SSLError|SSLCertVerificationError|OSError|b'|b\"|Errno")


def assert_plain(error: MailboxError) -> None:
    text = f"{error} {error.hint}"
    assert not PYTHON_INTERNALS.search(text), text


async def test_refused_login_names_the_variables(dovecot: Dovecot, tmp_path: Path) -> None:
    """A wrong password: the server's words, and a hint naming the variables to check."""
    settings = settings_for(dovecot, tmp_path, imap_password="wrong-password-1")
    with pytest.raises(MailboxAuthError) as info:
        await check_mailbox(settings)
    assert str(info.value).startswith(f"login refused for {dovecot.user}: [AUTHENTICATIONFAILED]")
    assert "OTP_BOT_IMAP_USER and OTP_BOT_IMAP_PASSWORD" in info.value.hint
    assert "wrong-password-1" not in str(info.value)
    assert_plain(info.value)


async def test_unknown_host_is_named(dovecot: Dovecot, tmp_path: Path) -> None:
    """A host name that does not resolve: the message names it, the hint names the variable."""
    settings = settings_for(
        dovecot, tmp_path, imap_host="no-such-host.invalid", imap_security="starttls"
    )
    with pytest.raises(MailboxError) as info:
        await check_mailbox(settings)
    assert str(info.value) == (
        f"connect to no-such-host.invalid:{dovecot.port}: the host name cannot be resolved (DNS)"
    )
    assert "OTP_BOT_IMAP_HOST" in info.value.hint
    assert_plain(info.value)


async def test_untrusted_certificate_suggests_the_ca_file(
    dovecot_tls: Dovecot, tmp_path: Path
) -> None:
    """A certificate from a private CA, no CA file: the hint names OTP_BOT_IMAP_CA_FILE."""
    settings = settings_for(
        dovecot_tls,
        tmp_path,
        imap_host="localhost",
        imap_port=dovecot_tls.tls_port,
        imap_security="tls",
    )
    with pytest.raises(MailboxError) as info:
        await check_mailbox(settings)
    assert "the server's TLS certificate is not trusted" in str(info.value)
    assert "OTP_BOT_IMAP_CA_FILE" in info.value.hint
    assert_plain(info.value)


async def test_tls_to_a_plain_port_suggests_starttls(dovecot_tls: Dovecot, tmp_path: Path) -> None:
    """Implicit TLS to the plain IMAP port: "TLS failed", the hint suggests starttls."""
    assert dovecot_tls.certs is not None
    settings = settings_for(
        dovecot_tls,
        tmp_path,
        imap_host="localhost",
        imap_port=dovecot_tls.port,
        imap_security="tls",
        imap_ca_file=dovecot_tls.certs.ca,
    )
    with pytest.raises(MailboxError) as info:
        await check_mailbox(settings)
    assert "TLS failed" in str(info.value)
    assert "OTP_BOT_IMAP_SECURITY=starttls" in info.value.hint
    assert_plain(info.value)


async def test_closed_port_suggests_the_port(dovecot: Dovecot, tmp_path: Path) -> None:
    """Nothing listening: "connection was refused", the hint names OTP_BOT_IMAP_PORT."""
    dovecot.stop()
    settings = settings_for(dovecot, tmp_path)
    with pytest.raises(MailboxError) as info:
        await check_mailbox(settings)
    assert "the connection was refused" in str(info.value)
    assert "OTP_BOT_IMAP_PORT" in info.value.hint
    assert_plain(info.value)
