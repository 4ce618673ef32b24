"""``otp-bot simulate``: serve a simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import structlog
from aiohttp import web

from otp_bot.config import Settings
from otp_bot.errors import ConfigError
from otp_bot.logs import configure
from otp_bot.sim.app import Simulator
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


async def serve(sim: Simulator, host: str, port: int) -> None:
    """Serve ``sim`` on host:port until SIGINT or SIGTERM; print the base URL first."""
    runner = web.AppRunner(sim.app, access_log=None)
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
    settings: Settings, *, host: str, port: int, script_file: Path | None, deliver: bool
) -> int:
    """``otp-bot simulate``: the account's API key and mailbox, served until a signal."""
    configure(settings.log_format.value, settings.log_level, settings.secrets())
    try:
        scripts = load_scripts(script_file) if script_file else {}
        mailbox = MailTarget.from_settings(settings) if deliver else None
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None
    sim = Simulator(
        api_key=settings.api_key.get_secret_value(),
        account_id=settings.account_id,
        mailbox=mailbox,
    )
    for draft_id, script in scripts.items():
        sim.script(draft_id, script)
    asyncio.run(serve(sim, host, port))
    return 0
