"""After-use actions on servers set up like the ones that broke them (Dovecot configured so).

No MOVE (COPY + UID EXPUNGE), neither MOVE nor UIDPLUS (degraded to seen,
loudly), personal folders under ``INBOX.`` (Courier's and Cyrus' layout), and
an action that fails on a dead connection (retried, counted, not dropped).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from otp_bot.config import MailAction
from otp_bot.imap.probe import check_mailbox
from otp_bot.imap.watcher import WatcherLinks
from tests.dovecot import Dovecot, simple_message
from tests.mailbox_helpers import (
    Blackhole,
    Recorder,
    linkedin_message,
    running,
    settings_for,
    until,
)
from tests.test_mailbox_servers import _mark_deleted_elsewhere

INBOX_PREFIX = (
    "namespace inbox {\n  inbox = yes\n  prefix = INBOX.\n  separator = .\n}",
    "mail_location = maildir:%h/Maildir:LAYOUT=fs",
)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """A Dovecot with the extra configuration lines the test was parametrized with."""
    extra: tuple[str, ...] = request.param
    started = Dovecot(extra_config=extra).start()
    try:
        yield started
    finally:
        started.cleanup()


@pytest.mark.parametrize(
    "server", [("imap_capability = IMAP4rev1 IDLE UIDPLUS NAMESPACE",)], indirect=True
)
async def test_move_without_move_capability(server: Dovecot, tmp_path: Path) -> None:
    """Without MOVE: UID COPY + UID STORE + UID EXPUNGE; another client's \\Deleted mail stays."""
    recorder = Recorder()
    settings = settings_for(server, tmp_path, mail_after_use="move")
    async with running(settings, recorder) as watcher:
        theirs = server.append(simple_message("deleted on the phone"))
        server.append(linkedin_message())
        await recorder.wait_for(2)
        _mark_deleted_elsewhere(server, theirs)
        await watcher.after_use(recorder.mails[1])
    assert server.uids() == [theirs]
    assert len(server.uids(folder="otp-bot.used")) == 1


@pytest.mark.parametrize("server", [("imap_capability = IMAP4rev1 IDLE",)], indirect=True)
@pytest.mark.parametrize("action", ["move", "delete"])
async def test_neither_move_nor_uidplus_degrades_to_seen(
    server: Dovecot, tmp_path: Path, action: str
) -> None:
    """Move/delete become seen, with an error at connect; check reports it; nothing expunged."""
    recorder = Recorder()
    settings = settings_for(server, tmp_path, mail_after_use=action)
    report = await check_mailbox(settings)
    assert report.after_use is MailAction.SEEN
    with capture_logs() as logs:
        async with running(settings, recorder) as watcher:
            theirs = server.append(simple_message("deleted on the phone"))
            used = server.append(linkedin_message())
            await recorder.wait_for(2)
            _mark_deleted_elsewhere(server, theirs)
            await watcher.after_use(recorder.mails[1])
    [degraded] = [e for e in logs if e["event"] == "mailbox_after_use_degraded"]
    assert (degraded["log_level"], degraded["action"]) == ("error", action)
    assert [e["action"] for e in logs if e["event"] == "mailbox_after_use"] == ["seen"]
    assert server.uids() == [theirs, used]
    assert "\\Seen" in server.flags(used)


@pytest.mark.parametrize("server", [INBOX_PREFIX], indirect=True)
async def test_move_folder_under_the_personal_namespace(server: Dovecot, tmp_path: Path) -> None:
    """Personal folders under ``INBOX.``: otp-bot/used is created as INBOX.otp-bot.used."""
    recorder = Recorder()
    settings = settings_for(server, tmp_path, mail_after_use="move")
    report = await check_mailbox(settings)
    assert (report.move_folder, report.move_folder_exists) == ("INBOX.otp-bot.used", False)
    async with running(settings, recorder) as watcher:
        server.append(linkedin_message())
        await recorder.wait_for(1)
        await watcher.after_use(recorder.mails[0])
    assert server.uids() == []
    assert len(server.uids(folder="INBOX.otp-bot.used")) == 1


async def test_failed_action_is_retried_and_counted(dovecot: Dovecot, tmp_path: Path) -> None:
    """An action lost with its connection is counted, then applied on the new connection."""
    relay = Blackhole(dovecot.host, dovecot.port)
    failures: list[str] = []
    try:
        settings = settings_for(
            dovecot, tmp_path, imap_port=relay.port, imap_timeout=1, mail_after_use="delete"
        )
        recorder = Recorder()
        links = WatcherLinks(after_use_failed=failures.append)
        with capture_logs() as logs:
            async with running(settings, recorder, links=links) as watcher:
                used = dovecot.append(linkedin_message())
                await recorder.wait_for(1)
                relay.freeze()  # the connection goes silent: the action times out
                await watcher.after_use(recorder.mails[0])
                assert failures == ["delete"]
                await until(lambda: used not in dovecot.uids())
        [failed] = [e for e in logs if e["event"] == "mailbox_after_use_failed"]
        assert (failed["attempt"], failed["retry_in"]) == (1, 5.0)
        assert [e["action"] for e in logs if e["event"] == "mailbox_after_use"] == ["delete"]
    finally:
        relay.close()


@pytest.mark.parametrize(
    ("server", "action", "expected", "passed"),
    [
        (
            ("imap_capability = IMAP4rev1 IDLE",),
            "move",
            "OTP_BOT_MAIL_AFTER_USE=move needs MOVE or UIDPLUS",
            False,
        ),
        (
            INBOX_PREFIX,
            "move",
            "used mail moves to 'INBOX.otp-bot.used' (will be created at the first move)",
            True,
        ),
    ],
    indirect=["server"],
)
async def test_check_reports_the_after_use_set_up(
    server: Dovecot, tmp_path: Path, action: str, expected: str, *, passed: bool
) -> None:
    """`otp-bot check` fails a move it could only degrade, and names the real move folder."""
    from otp_bot.daemon.check import mailbox_lines

    settings = settings_for(server, tmp_path, mail_after_use=action)
    [line] = [line for line in await mailbox_lines(settings) if line.name == "server"]
    assert (line.status == "ok") is passed, line
    assert expected in line.detail, line
    assert server.uids() == []  # nothing was created or changed
    conn = server.client()
    try:
        assert "otp-bot" not in repr(conn.list())
    finally:
        conn.logout()
