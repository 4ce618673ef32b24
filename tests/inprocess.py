"""The daemon's ``service.run()`` in the test's own event loop.

A real Dovecot (the ``dovecot`` fixture), the postpress simulator served by
aiohttp on loopback and delivering to that Dovecot, and ``service.run`` with a
notify socket of its own; the test talks to the control API over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from otp_bot.config import Settings
from otp_bot.control import token as control_token
from otp_bot.daemon import service
from otp_bot.daemon.notify import Notifier
from otp_bot.sim.app import Simulator
from otp_bot.sim.linkedin_mail import MailTarget
from tests import dovecot as dc

API_KEY = "pp_test_inprocess_key"
# Startup: IMAP login and the first catch-up on loopback take milliseconds;
# a slow CI machine gets ample room.
READY_TIMEOUT = 15.0


@dataclass
class Running:
    settings: list[Settings]
    sims: dict[str, Simulator]
    stop: asyncio.Event
    task: asyncio.Task[int]
    notify: socket.socket
    base_url: str
    token: str | None = None
    messages: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        # No OTP_BOT_CONTROL_TOKEN: the daemon's own, from its state directory.
        token = self.token or control_token.read(self.settings[0].state_dir)
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base_url + path, json=body, headers=self.headers()) as r,
        ):
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def notified(self, key: str, within: float = READY_TIMEOUT) -> str:
        """The first datagram (old or new) holding ``key`` (e.g. ``READY=1``)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            while True:
                for message in self.messages:
                    if key in message.splitlines():
                        return message
                self.messages.append((await loop.sock_recv(self.notify, 4096)).decode())

    async def wait_state(self, draft_id: str, *states: str, within: float = 20) -> Any:
        """Poll GET /drafts/{id} until the draft is in one of ``states``."""
        async with asyncio.timeout(within):
            while True:
                status, draft = await self.request("GET", f"/drafts/{draft_id}")
                if status == 200 and draft["state"] in states:
                    return draft
                await asyncio.sleep(0.05)  # polling the daemon's state, not standing in for sync

    async def wait_health(self, wanted: int, within: float = 15) -> tuple[int, Any]:
        """Poll GET /healthz until it answers ``wanted``; return that answer."""
        async with asyncio.timeout(within):
            while True:
                answer = await self.request("GET", "/healthz")
                if answer[0] == wanted:
                    return answer
                await asyncio.sleep(0.05)  # polling the daemon's state, not standing in for sync


def settings_for(
    dovecot: dc.Dovecot, state_dir: Path, base_url: str, account_id: str = "acc_inproc",
    user: str | None = None, **overrides: Any,
) -> Settings:  # fmt: skip
    values: dict[str, Any] = {
        "account_id": account_id,
        "api_key": API_KEY,
        "api_base_url": base_url,
        "api_timeout": 3,
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_user": user or dovecot.user,
        "imap_password": dovecot.password,
        "imap_security": "none",
        "imap_timeout": 5,
        "state_dir": state_dir,
        "control_addr": f"127.0.0.1:{dc.free_port()}",
        "log_format": "json",
        **overrides,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def simulator(dovecot: dc.Dovecot, account_id: str, user: str) -> AsyncIterator[
    tuple[Simulator, str]]:  # fmt: skip
    target = MailTarget(dovecot.host, dovecot.port, user, dovecot.password, security="none")
    sim = Simulator(api_key=API_KEY, account_id=account_id, mailbox=target)
    runner = web.AppRunner(sim.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield sim, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running(
    dovecot: dc.Dovecot,
    accounts: dict[str, dict[str, Any]] | None = None,
    *,
    environ: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> AsyncIterator[Running]:
    """Run the daemon for ``accounts`` (id -> setting overrides) until the block ends."""
    accounts = accounts or {"acc_inproc": {}}
    state_dir = Path(tempfile.mkdtemp(prefix="svc-", dir="/tmp"))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(state_dir / "notify"))
    notify.setblocking(False)
    async with contextlib.AsyncExitStack() as stack:
        sims, settings = {}, []
        for account_id, overrides in accounts.items():
            user = overrides.pop("user", dovecot.user)
            sim, base_url = await stack.enter_async_context(simulator(dovecot, account_id, user))
            sims[account_id] = sim
            account = settings_for(dovecot, state_dir, base_url, account_id, user, **overrides)
            settings.append(account)
        stop = asyncio.Event()
        env = {"NOTIFY_SOCKET": str(state_dir / "notify"), **(environ or {})}
        task = asyncio.create_task(
            service.run(settings, notifier=Notifier(env["NOTIFY_SOCKET"]), environ=env, stop=stop)
        )
        token = settings[0].control_token
        handle = Running(
            settings, sims, stop, task, notify, f"http://{settings[0].control_addr}",
            token.get_secret_value() if token else None,
        )  # fmt: skip
        try:
            if wait_ready:
                await handle.notified("READY=1")
            yield handle
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            notify.close()
            shutil.rmtree(state_dir, ignore_errors=True)
