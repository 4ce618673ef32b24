"""The simulator's admin endpoints (outside ``/v1``, no auth: bind to loopback).

- ``POST /_sim/script`` ``{"draft_id": "...", "script": {...}}``: follow this
  ``Script`` for the draft from now on (its state starts afresh);
- ``GET /_sim/requests``: every API request received, in order;
- ``GET /_sim/mails``: every e-mail issued (code, link, genuine or decoy,
  checkpoint type, when issued and when each APPEND of it completed);
- ``POST /_sim/wait-for-mail``: answers once every e-mail issued so far was
  delivered (or failed), with the delivery errors so far;
- ``GET /_sim/drafts/{draft_id}``: the simulated draft's state;
- ``GET /_sim/account``: the account's connection and the API's outage;
- ``POST /_sim/account`` ``{"connected": false, "error"?, "status"?,
  "reconnect_after"?}`` disconnects the account (every publish and checkpoint
  answers that account-level error; ``GET /v1/accounts/{id}`` reports the
  status), ``{"connected": true}`` reconnects it;
- ``POST /_sim/outage`` ``{"mode": "503"|"500"|"drop", "seconds"?}`` takes
  the whole API down (for that long), ``{"mode": null}`` brings it back;
- ``POST /_sim/reset``: forget every draft, request, mail and replay; the
  account is connected and the API up again.

``serve()`` runs a simulator until SIGINT or SIGTERM (``otp-bot simulate``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from otp_bot.config import Settings
from otp_bot.errors import ConfigError
from otp_bot.logs import configure
from otp_bot.sim.linkedin_mail import MailTarget
from otp_bot.sim.script import Script

if TYPE_CHECKING:
    from otp_bot.sim.app import Simulator


def admin_routes(sim: Simulator) -> list[web.RouteDef]:
    async def script(request: web.Request) -> web.Response:
        data = await json_or_none(request)
        if not isinstance(data, dict) or not isinstance(data.get("draft_id"), str):
            return web.json_response({"error": "expected {draft_id, script}"}, status=400)
        try:
            sim.script(data["draft_id"], Script.from_dict(data.get("script") or {}))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(sim.draft(data["draft_id"]))

    async def requests(_request: web.Request) -> web.Response:
        return web.json_response([asdict(record) for record in sim.requests])

    async def mails(_request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "draft_id": draft_id,
                    "message_id": mail.message_id,
                    "code": mail.code,
                    "link": mail.link,
                    "genuine": mail.genuine,
                    **sim.mail_record(mail.message_id),  # type, issued_at, delivered_at
                }
                for draft_id, mail in sim.mails
            ]
        )

    async def wait_for_mail(_request: web.Request) -> web.Response:
        await sim.wait_for_mail()
        return web.json_response({"sent": len(sim.mails), "errors": sim.delivery_errors})

    async def draft(request: web.Request) -> web.Response:
        return web.json_response(sim.draft(request.match_info["draft_id"]))

    async def reset(_request: web.Request) -> web.Response:
        sim.reset()
        return web.json_response({"reset": True})

    return [
        web.post("/_sim/script", script),
        web.get("/_sim/requests", requests),
        web.get("/_sim/mails", mails),
        web.post("/_sim/wait-for-mail", wait_for_mail),
        web.get("/_sim/drafts/{draft_id}", draft),
        web.post("/_sim/reset", reset),
        web.get("/_sim/account", partial(_account, sim)),
        web.post("/_sim/account", partial(_account, sim)),
        web.post("/_sim/outage", partial(_account, sim)),
    ]


async def _account(sim: Simulator, request: web.Request) -> web.Response:
    """Read, or change (POST), the account's connection or the API's outage."""
    if request.method == "POST":
        data = await json_or_none(request)
        if not isinstance(data, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        try:
            if request.path.endswith("/outage"):
                sim.account.apply_outage(data)
            else:
                sim.account.apply(data)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(sim.account.to_json())


async def json_or_none(request: web.Request) -> Any:
    """The request's JSON body, or None when it is not JSON."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


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
    from otp_bot.sim.app import Simulator

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
