"""Many simulated accounts in one process: one ``Simulator`` per account, one server.

``Fleet(simulators)`` serves the API of every account at the same base URL,
as postpress does: each request goes to the simulator whose API key it
carries (an unknown key gets the first simulator's 401, recorded there).
Each account keeps its own drafts, mails, requests and account state.

Admin endpoints: ``/_sim/accounts/{account_id}/...`` reaches one account's
(every ``/_sim/...`` endpoint of ``sim/admin.py``); with a single account the
plain ``/_sim/...`` paths reach it too, as before. Across the fleet:
``GET /_sim/requests`` and ``GET /_sim/mails`` (each entry with its
``account_id``), ``POST /_sim/wait-for-mail`` and ``POST /_sim/reset``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from otp_bot.sim.admin import mails_json, requests_json
from otp_bot.sim.app import Simulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_AGGREGATES = ("/_sim/requests", "/_sim/mails", "/_sim/wait-for-mail", "/_sim/reset")


class Fleet:
    """Routes each request to its account's simulator; ``app`` serves them all."""

    def __init__(self, simulators: Sequence[Simulator]) -> None:
        if not simulators:
            raise ValueError("a fleet needs at least one simulator")
        self.simulators = list(simulators)
        self._by_key = {sim.api_key: sim for sim in self.simulators}
        self._by_account = {sim.account.account_id: sim for sim in self.simulators}
        if len(self._by_key) != len(self.simulators):
            raise ValueError("every simulated account needs its own API key")
        if len(self._by_account) != len(self.simulators):
            raise ValueError("every simulated account needs its own account id")
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self._routes()
        for sim in self.simulators:
            self.app.on_cleanup.extend(sim.app.on_cleanup)

    def _routes(self) -> None:
        """The same paths as one simulator's, each bound to a dispatcher."""
        handlers: dict[tuple[str, str], dict[Simulator, Handler]] = {}
        for sim in self.simulators:
            for route in sim.app.router.routes():
                path = route.resource.canonical if route.resource else ""
                handlers.setdefault((route.method, path), {})[sim] = route.handler
        for (method, path), by_sim in handlers.items():
            if path.startswith("/_sim/"):
                account_path = "/_sim/accounts/{fleet_account}" + path.removeprefix("/_sim")
                self.app.router.add_route(method, account_path, self._by_path(by_sim))
                if path not in _AGGREGATES:
                    self.app.router.add_route(method, path, self._single(by_sim))
            else:
                self.app.router.add_route(method, path, self._by_api_key(by_sim))
        self.app.router.add_get("/_sim/requests", self._requests)
        self.app.router.add_get("/_sim/mails", self._mails)
        self.app.router.add_post("/_sim/wait-for-mail", self._wait_for_mail)
        self.app.router.add_post("/_sim/reset", self._reset)

    def _by_api_key(self, by_sim: dict[Simulator, Handler]) -> Handler:
        async def dispatch(request: web.Request) -> web.StreamResponse:
            sim = self._by_key.get(request.headers.get("X-API-KEY", ""), self.simulators[0])
            return await by_sim[sim](request)

        return dispatch

    def _by_path(self, by_sim: dict[Simulator, Handler]) -> Handler:
        async def dispatch(request: web.Request) -> web.StreamResponse:
            sim = self._by_account.get(request.match_info["fleet_account"])
            if sim is None:
                return web.json_response({"error": "no such simulated account"}, status=404)
            return await by_sim[sim](request)

        return dispatch

    def _single(self, by_sim: dict[Simulator, Handler]) -> Handler:
        async def dispatch(request: web.Request) -> web.StreamResponse:
            if len(self.simulators) > 1:
                return web.json_response(
                    {"error": "several accounts: use /_sim/accounts/{account_id}/..."}, status=404
                )
            return await by_sim[self.simulators[0]](request)

        return dispatch

    async def _requests(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self._tagged(requests_json))

    async def _mails(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self._tagged(mails_json))

    def _tagged(self, entries: Callable[[Simulator], list[dict[str, Any]]]) -> list[Any]:
        """Every account's entries of one admin list, each with its account id."""
        return [
            {"account_id": sim.account.account_id, **entry}
            for sim in self.simulators
            for entry in entries(sim)
        ]

    async def _wait_for_mail(self, _request: web.Request) -> web.StreamResponse:
        await asyncio.gather(*(sim.wait_for_mail() for sim in self.simulators))
        sent = sum(len(sim.mails) for sim in self.simulators)
        errors = [error for sim in self.simulators for error in sim.delivery_errors]
        return web.json_response({"sent": sent, "errors": errors})

    async def _reset(self, _request: web.Request) -> web.StreamResponse:
        for sim in self.simulators:
            sim.reset()
        return web.json_response({"reset": True})
