"""The test Dovecot itself: it starts, accepts mail, restarts with mail kept."""

from __future__ import annotations

import imaplib

from tests.dovecot import Dovecot, simple_message


def test_append_and_restart_keep_mail(dovecot: Dovecot) -> None:
    """Mail appended over IMAP survives a restart, and UIDs grow."""
    first = dovecot.append(simple_message("one"))
    dovecot.restart()
    second = dovecot.append(simple_message("two"))
    assert second > first
    assert dovecot.uids() == [first, second]


def test_tls_with_throwaway_ca(dovecot_tls: Dovecot) -> None:
    """Implicit TLS verifies against the throwaway CA."""
    conn = imaplib.IMAP4_SSL(
        dovecot_tls.host, dovecot_tls.tls_port, ssl_context=dovecot_tls.tls_context(), timeout=10
    )
    try:
        assert conn.login(dovecot_tls.user, dovecot_tls.password)[0] == "OK"
    finally:
        conn.logout()


def test_maildir_write_visible(dovecot: Dovecot) -> None:
    """Messages written into the Maildir directly are seen by the server."""
    dovecot.write_maildir([simple_message(str(i)) for i in range(50)])
    assert len(dovecot.uids()) == 50
