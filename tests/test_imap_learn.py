"""What the bot learns after login, on every server: the capabilities the LOGIN answer
carried are used as they are (one command less), and they are the server's full word."""

from __future__ import annotations

from pathlib import Path

from otp_bot.imap.learn import learn
from otp_bot.imap.login import connect, login
from otp_bot.imap.server import capabilities
from tests.conftest import AnyServer
from tests.dovecot import Dovecot
from tests.mailbox_helpers import settings_for


def test_learn_matches_an_explicit_capability_command(
    imap_server: AnyServer, tmp_path: Path
) -> None:
    """Whether or not the server announced its capabilities at login, learn() gives the
    same set a CAPABILITY command answers, and sends that command only when it must."""
    settings = settings_for(imap_server, tmp_path)
    box = connect(settings)
    try:
        login(box, settings, None)
        client = box.client
        announced = "CAPABILITY" in client.untagged_responses
        before = int(client.tagnum)
        found = learn(client)
        sent = int(client.tagnum) - before
        typ, data = client.capability()
        assert typ == "OK"
        assert found.capabilities == capabilities(data)
        assert "IDLE" in found.capabilities
        assert sent == (1 if announced else 2)  # NAMESPACE (or LIST), and CAPABILITY if asked
    finally:
        box.client.logout()


def test_dovecot_announces_at_login_so_no_capability_command(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """Dovecot's LOGIN answer carries OK [CAPABILITY ...] (with its post-login MOVE): the
    bot reads it there and asks only for the namespace."""
    settings = settings_for(dovecot, tmp_path)
    box = connect(settings)
    try:
        login(box, settings, None)
        before = int(box.client.tagnum)
        found = learn(box.client)
        assert int(box.client.tagnum) - before == 1
        assert {"IDLE", "MOVE", "UIDPLUS"} <= found.capabilities
    finally:
        box.client.logout()
