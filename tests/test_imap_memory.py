"""What one IMAP connection keeps in memory: a small read buffer, shared server description and
TLS context."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest

from otp_bot.imap import wire
from otp_bot.imap.auth import tls_context
from otp_bot.imap.session import Session
from tests.dovecot import Certificates, Dovecot
from tests.mailbox_helpers import linkedin_message, settings_for


def test_read_buffer_is_small_and_long_answers_still_arrive_whole(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """After the login the connection reads through a 1 kB buffer, not imaplib's 8 kB; a
    message of long lines, many times the buffer, is read byte for byte."""
    long_line = b"X-Filler: " + b"y" * 5000 + b"\r\n"
    raw = linkedin_message().replace(b"\r\n\r\n", b"\r\n" + long_line * 40 + b"\r\n", 1)
    uid = dovecot.append(raw)
    session = Session(settings_for(dovecot, tmp_path), None)
    try:
        session.open()
        # BufferedReader's size includes its buffer's.
        assert sys.getsizeof(session.client.file) < wire.READ_BUFFER + 1024
        [item] = session.headers([uid])
        body = session.body(uid, item.size, 10_000_000)
        assert body == (raw, True)
        assert session.search_above(0) == [uid]
    finally:
        session.close()


def test_connections_to_one_server_share_its_description(dovecot: Dovecot, tmp_path: Path) -> None:
    """Two mailboxes on one server hold the same ServerInfo object (capabilities, namespace)."""
    first = Session(settings_for(dovecot, tmp_path / "a"), None)
    second = Session(settings_for(dovecot, tmp_path / "b"), None)
    try:
        one, two = first.open(), second.open()
        assert one.server is two.server
        assert one.idle
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_connections_share_one_context(
    dovecot_tls: Dovecot, tmp_path: Path, security: str
) -> None:
    """Two TLS (or STARTTLS) mailboxes with one CA file use one SSLContext (each holds the
    parsed system CA store, about 0.8 MB), and both are verified and logged in."""
    assert dovecot_tls.certs is not None
    port = dovecot_tls.tls_port if security == "tls" else dovecot_tls.port
    sessions = [
        Session(
            settings_for(
                dovecot_tls,
                tmp_path / name,
                imap_host="localhost",
                imap_port=port,
                imap_security=security,
                imap_ca_file=dovecot_tls.certs.ca,
            ),
            None,
        )
        for name in ("a", "b")
    ]
    try:
        for session in sessions:
            session.open()
        first, second = (session.client.sock for session in sessions)
        assert isinstance(first, ssl.SSLSocket)
        assert isinstance(second, ssl.SSLSocket)
        assert first.context is second.context
    finally:
        for session in sessions:
            session.close()


def test_a_changed_ca_file_gets_a_new_context(tmp_path: Path) -> None:
    """A CA file rewritten on disk is read again at the next connection, not served stale."""
    first, second = (Certificates.create(_made(tmp_path / n)) for n in ("one", "two"))
    ca = tmp_path / "ca.pem"
    ca.write_bytes(first.ca.read_bytes())
    before = tls_context(ca)
    assert tls_context(ca) is before
    ca.write_bytes(first.ca.read_bytes() + second.ca.read_bytes())
    after = tls_context(ca)
    assert after is not before
    assert after.cert_store_stats()["x509_ca"] == before.cert_store_stats()["x509_ca"] + 1


def _made(directory: Path) -> Path:
    directory.mkdir()
    return directory
