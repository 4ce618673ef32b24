"""The service's life: READY/STATUS/WATCHDOG/STOPPING, startup checks, shutdown bound."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from otp_bot.daemon import service
from otp_bot.errors import ConfigError
from tests import dovecot as dc
from tests.inprocess import running, settings_for

pytestmark = pytest.mark.dovecot

# Half of this is the ping period: 0.2 s keeps the test short.
WATCHDOG_USEC = "400000"


async def test_ready_status_and_stopping(dovecot: dc.Dovecot) -> None:
    """READY=1 comes with the mailbox watched; STATUS= counts drafts; STOPPING=1 at the end."""
    async with running(dovecot) as daemon:
        ready = await daemon.notified("READY=1")
        assert "STATUS=watching; no drafts" in ready.splitlines()
        await daemon.request("POST", "/drafts", {"draft_id": "d-status"})
        await daemon.wait_state("d-status", "published")
        await daemon.notified("STATUS=watching; 1 published")
        started = time.monotonic()
        daemon.stop.set()
        assert await asyncio.wait_for(daemon.task, 3) == 0
        assert time.monotonic() - started < 3
        await daemon.notified("STOPPING=1", within=1)


async def test_watchdog_only_while_the_mailbox_loop_progresses(dovecot: dc.Dovecot) -> None:
    """WATCHDOG=1 is sent while the IDLE loop turns, and stops once the mail server is gone."""
    fast: dict[str, dict[str, Any]] = {
        "acc_inproc": {"imap_idle_interval": 0.2, "health_max_stale": 1.0, "imap_timeout": 1}
    }
    async with running(dovecot, fast, environ={"WATCHDOG_USEC": WATCHDOG_USEC}) as daemon:
        for _ in range(3):  # several pings, each after fresh progress
            daemon.messages.clear()
            await daemon.notified("WATCHDOG=1", within=2)
        dovecot.kill()
        await daemon.wait_health(503)  # the daemon sees the loop as stalled
        drain(daemon.notify)  # pings sent before that moment are already queued
        daemon.messages.clear()
        with pytest.raises(TimeoutError):
            await daemon.notified("WATCHDOG=1", within=1.5)


def drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(4096)
        except BlockingIOError:
            return


async def test_no_watchdog_without_watchdog_usec(dovecot: dc.Dovecot) -> None:
    """Without $WATCHDOG_USEC no WATCHDOG=1 is ever sent."""
    fast: dict[str, dict[str, Any]] = {"acc_inproc": {"imap_idle_interval": 0.2}}
    async with running(dovecot, fast) as daemon:
        with pytest.raises(TimeoutError):
            await daemon.notified("WATCHDOG=1", within=1.0)


async def test_ready_even_when_one_account_cannot_log_in(dovecot: dc.Dovecot) -> None:
    """A refused IMAP login is a settled, reported state: READY=1 still comes, with the reason."""
    accounts: dict[str, dict[str, Any]] = {
        "acc_inproc": {},
        # Another mailbox: two accounts on one need OTP_BOT_MAIL_RECIPIENTS.
        "acc_locked": {"imap_password": "not-the-password", "user": "locked@example.test"},
    }
    async with running(dovecot, accounts) as daemon:
        ready = await daemon.notified("READY=1")
        assert "unhealthy: acc_locked" in ready
        assert not daemon.task.done()


def base(dovecot: dc.Dovecot, **overrides: Any) -> Any:
    return settings_for(dovecot, dovecot.root, "http://127.0.0.1:9/v1", **overrides)


async def test_duplicate_accounts_are_refused(dovecot: dc.Dovecot) -> None:
    """The same OTP_BOT_ACCOUNT_ID in two env files is a configuration error."""
    with pytest.raises(ConfigError, match="more than once"):
        await service.run([base(dovecot), base(dovecot)], stop=asyncio.Event())


async def test_clock_skew_not_below_code_timeout_warns(dovecot: dc.Dovecot) -> None:
    """A clock skew as long as the code timeout is named in a startup warning."""
    settings = base(dovecot, clock_skew=600, code_timeout=300)
    stop = asyncio.Event()
    stop.set()
    with capture_logs() as logs:
        assert await service.run([settings], stop=stop) == 0
    warned = [e for e in logs if e["event"] == "clock_skew_not_below_code_timeout"]
    assert warned == [
        {
            "event": "clock_skew_not_below_code_timeout",
            "log_level": "warning",
            "account_id": settings.account_id,
            "clock_skew": 600.0,
            "code_timeout": 300.0,
        }
    ]


async def test_shared_address_needs_one_token(dovecot: dc.Dovecot) -> None:
    """Accounts sharing a control address must agree on its token."""
    addr = f"127.0.0.1:{dc.free_port()}"
    first = base(dovecot, account_id="a", control_addr=addr, control_token="t" * 20)
    second = base(dovecot, account_id="b", control_addr=addr, control_token="u" * 20)
    with pytest.raises(ConfigError, match="same token"):
        await service.run([first, second], stop=asyncio.Event())


async def test_busy_control_port_is_a_clear_error(dovecot: dc.Dovecot) -> None:
    """A control address already in use stops startup with a message naming the setting."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = base(dovecot, control_addr=f"127.0.0.1:{port}")
        with pytest.raises(ConfigError, match="OTP_BOT_CONTROL_ADDR: cannot listen"):
            await asyncio.wait_for(service.run([settings], stop=asyncio.Event()), 10)
