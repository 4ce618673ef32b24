"""The account tells its mailbox watcher that a checkpoint waits (the daemon, in process)."""

from __future__ import annotations

import pytest

from otp_bot.sim.script import Script
from tests import dovecot as dc
from tests.inprocess import running

pytestmark = pytest.mark.dovecot


async def test_waiting_checkpoint_makes_the_account_probe() -> None:
    """The code's e-mail, 2 s after the checkpoint, is read within seconds on a 600 s poll.

    The server has no IDLE and is polled every 600 s; the draft entering
    awaiting_code nudges the watcher, whose search then finds nothing yet. Only
    probing every OTP_BOT_IMAP_PROBE_INTERVAL while the draft waits finds the
    mail in time. Its lag lands in otp_bot_mailbox_lag_seconds.
    """
    server = dc.Dovecot(idle=False).start()
    try:
        slow = {"acc_inproc": {"imap_poll_interval": 600, "imap_probe_interval": 0.3}}
        async with running(server, slow) as daemon:
            daemon.sims["acc_inproc"].script("d-probe", Script(mail_delay=2.0))
            await daemon.request("POST", "/drafts", {"draft_id": "d-probe"})
            await daemon.wait_state("d-probe", "published", within=20)
            status, metrics = await daemon.request("GET", "/metrics")
        assert status == 200
        assert 'otp_bot_mailbox_lag_seconds_count{account="acc_inproc"} 1.0' in metrics
    finally:
        server.cleanup()
