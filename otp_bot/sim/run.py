"""``otp-bot simulate``: serve a simulator (or a ``Fleet`` of them) until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog
from aiohttp import web

from otp_bot.config import Settings
from otp_bot.errors import ConfigError
from otp_bot.logs import configure
from otp_bot.sim.app import Simulator
from otp_bot.sim.fleet import Fleet
from otp_bot.sim.linkedin_mail import MailTarget
from otp_bot.sim.script import Script

log = structlog.get_logger(__name__)


def load_scripts(path: Path) -> dict[str, Script]:
    """A JSON file ``{"draft_id": {script...}, ...}`` -> scripts (ValueError/TypeError)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read script file {path}: {exc}") from None
    if not isinstance(data, Mapping):
        raise TypeError(f"{path}: expected an object mapping draft ids to scripts")
    return {str(draft_id): Script.from_dict(script) for draft_id, script in data.items()}


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` on host:port until SIGINT or SIGTERM; print the base URL first."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0]
        base_url = f"http://{host}:{bound[1]}/v1"
        # One line on stdout, for scripts that start the simulator on port 0.
        print(f"postpress simulator listening on {base_url}", flush=True)
        log.info("sim_listening", base_url=base_url)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("sim_stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        sys.stdout.flush()


def run_simulator(
    accounts: Sequence[Settings],
    *,
    host: str,
    port: int,
    script_file: Path | None,
    deliver: bool,
) -> int:
    """``otp-bot simulate``: each account's API key and mailbox, served until a signal.

    One account or many: a ``Fleet`` serves them at one URL, each request
    routed by its API key; scripts from ``script_file`` apply to every account.
    """
    first = accounts[0]
    secrets = [value for settings in accounts for value in settings.secrets()]
    configure(first.log_format.value, first.log_level, secrets)
    try:
        scripts = load_scripts(script_file) if script_file else {}
        mailboxes = [MailTarget.from_settings(s) if deliver else None for s in accounts]
        sims = [
            Simulator(
                api_key=settings.api_key.get_secret_value(),
                account_id=settings.account_id,
                mailbox=mailbox,
                recipient=next(iter(settings.mail_recipients), None),
            )
            for settings, mailbox in zip(accounts, mailboxes, strict=True)
        ]
        fleet = Fleet(sims)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None
    for sim in sims:
        for draft_id, script in scripts.items():
            sim.script(draft_id, script)
    asyncio.run(serve(fleet.app, host, port))
    return 0
