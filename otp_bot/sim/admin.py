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

The routes see the simulator through ``Scripted`` (``app.Simulator`` is one),
so this module does not import ``app``, which imports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from typing import Any, Protocol

from aiohttp import web

from otp_bot.sim.account import SimAccount
from otp_bot.sim.linkedin_mail import LinkedinMail
from otp_bot.sim.script import Script
from otp_bot.sim.state import RecordedRequest


class Scripted(Protocol):
    """What the admin endpoints need from the simulator."""

    account: SimAccount

    @property
    def requests(self) -> Sequence[RecordedRequest]: ...

    @property
    def mails(self) -> Sequence[tuple[str, LinkedinMail]]: ...

    @property
    def delivery_errors(self) -> Sequence[str]: ...

    def script(self, draft_id: str, script: Script) -> None: ...

    def reset(self) -> None: ...

    def draft(self, draft_id: str) -> dict[str, Any]: ...

    async def wait_for_mail(self) -> None: ...

    def mail_record(self, message_id: str) -> dict[str, Any]: ...


def admin_routes(sim: Scripted) -> list[web.RouteDef]:
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
        return web.json_response(requests_json(sim))

    async def mails(_request: web.Request) -> web.Response:
        return web.json_response(mails_json(sim))

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


def requests_json(sim: Scripted) -> list[dict[str, Any]]:
    """``GET /_sim/requests``: every API request received, in order."""
    return [asdict(record) for record in sim.requests]


def mails_json(sim: Scripted) -> list[dict[str, Any]]:
    """``GET /_sim/mails``: every e-mail issued, with when it was issued and delivered."""
    return [
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


async def _account(sim: Scripted, request: web.Request) -> web.Response:
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
