"""What one IMAP connection keeps in memory: a small read buffer, one shared server description."""

from __future__ import annotations

import sys
from pathlib import Path

from otp_bot.imap import wire
from otp_bot.imap.session import Session
from tests.dovecot import Dovecot
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
