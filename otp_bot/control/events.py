"""``GET /events``: the draft events as a server-sent events stream.

Each event is one line of the draft history (the same JSON as the webhook's
body), sent as ``event: draft``, with an ``id:`` that a client gives back in
``Last-Event-ID`` when it reconnects (browsers' ``EventSource`` does so by
itself) to get every event it missed, in order. Without one the stream starts
with the next event; ``?after=0`` replays the history that retention kept.
``?account_id=`` keeps one account's events. A comment line every
``HEARTBEAT`` seconds lets both ends notice a dead connection; at most
``MAX_STREAMS`` streams are open at once (each is a task and a socket).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from otp_bot.control.operator import Refused

# Seconds between keep-alive comments on a quiet stream.
HEARTBEAT = 15.0
# Open streams at once, for all clients (dashboards, integrations).
MAX_STREAMS = 8
# A Last-Event-ID is a few numbers; longer is not ours.
MAX_CURSOR = 200

JsonDict = dict[str, Any]


class EventSource(Protocol):
    """The events the stream reads (``daemon.feed.EventFeed``)."""

    @property
    def version(self) -> int: ...

    def start(self, cursor: str | None) -> str: ...

    async def read(self, cursor: str, account_id: str | None) -> list[tuple[JsonDict, str]]: ...

    async def wait(self, version: int, within: float) -> bool: ...


class EventStream:
    """The ``GET /events`` handler over one source, counting its open streams."""

    def __init__(self, source: EventSource) -> None:
        self._source = source
        self._open = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._open >= MAX_STREAMS:
            raise Refused(503, f"{MAX_STREAMS} event streams are open already")
        given = request.headers.get("Last-Event-ID") or request.query.get("after")
        wrong = Refused(400, "Last-Event-ID / after: not an event id of this daemon")
        if given is not None and len(given) > MAX_CURSOR:
            raise wrong
        try:
            cursor = self._source.start(given)
        except ValueError:
            raise wrong from None
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        self._open += 1
        try:
            await self._pump(response, cursor, request.query.get("account_id"))
        except ConnectionError:  # the client went away
            pass
        finally:
            self._open -= 1
        return response

    async def _pump(self, response: web.StreamResponse, start: str, account: str | None) -> None:
        await response.write(b"retry: 3000\n\n")
        cursor = start
        while True:
            version = self._source.version
            batch = await self._source.read(cursor, account)
            for event, position in batch:
                data = json.dumps(event, ensure_ascii=False)
                await response.write(f"id: {position}\nevent: draft\ndata: {data}\n\n".encode())
                cursor = position
            if not batch and not await self._source.wait(version, HEARTBEAT):
                await response.write(b": keep-alive\n\n")
