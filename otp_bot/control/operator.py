"""The control API's operator endpoints: cancel, bulk retry, resume, filtered listing.

POST /drafts/{id}/cancel   {"account_id"?}           cancel one draft
POST /drafts/retry         {"failed": true, "error"?, "account_id"?}
                                                     queue failed drafts again
POST /resume               {"account_id"?}           probe held accounts now
POST /accounts/{id}/resume                           the same, for one account
GET  /drafts?state=S[,S2]&account_id=A&since=T       drafts, filtered (T: ISO 8601)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from otp_bot.solve.drafts import State

JsonDict = dict[str, Any]
# Every state a draft can be in, to refuse a mistyped filter.
STATES = frozenset(state.value for state in State)
# An errors/... type or an otp-bot reason is a short identifier.
MAX_ERROR = 200


class OperatedAccount(Protocol):
    """What these endpoints need from one account (``daemon.operations.Operations``)."""

    @property
    def account_id(self) -> str: ...

    def draft(self, draft_id: str) -> JsonDict | None: ...

    def find_drafts(self, states: set[str] | None, since: datetime | None) -> list[JsonDict]: ...

    async def cancel(self, draft_id: str) -> JsonDict | None: ...

    async def retry_failed(self, error: str | None) -> list[JsonDict]: ...

    async def resume(self) -> JsonDict: ...


class Refused(Exception):
    """A request these endpoints refuse (``status``, and a message for the caller)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


BodyReader = Callable[[web.Request], Awaitable[JsonDict]]


class Operator:
    """The operator endpoints over the accounts of one control API."""

    def __init__(
        self, accounts: Callable[[], Sequence[OperatedAccount]], read_body: BodyReader
    ) -> None:
        # A getter, not a list: a reload (SIGHUP) changes the API's accounts.
        self._accounts = accounts
        self._read_body = read_body  # the API's JSON object reader

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/drafts/retry", self.retry),
            web.post("/drafts/{draft_id}/cancel", self.cancel),
            web.post("/resume", self.resume),
            web.post("/accounts/{account_id}/resume", self.resume),
        ]

    def _chosen(self, account_id: object) -> list[OperatedAccount]:
        if account_id is None:
            return list(self._accounts())
        found = [a for a in self._accounts() if a.account_id == account_id]
        if not found:
            raise Refused(404, f"no account {account_id!r} on this control API")
        return found

    async def _body(self, request: web.Request, keys: set[str]) -> JsonDict:
        """The JSON object body (empty when there is none); unknown keys are refused."""
        if not request.can_read_body:
            return {}
        body = await self._read_body(request)
        unknown = set(body) - keys
        if unknown:
            raise Refused(400, f"unknown fields: {', '.join(sorted(unknown))}")
        return dict(body)

    async def cancel(self, request: web.Request) -> web.Response:
        draft_id = request.match_info["draft_id"]
        body = await self._body(request, {"account_id"})
        holders = [a for a in self._chosen(body.get("account_id")) if a.draft(draft_id)]
        if len(holders) > 1:
            raise Refused(409, f"draft {draft_id!r} exists in several accounts: give account_id")
        result = await holders[0].cancel(draft_id) if holders else None
        if result is None:
            raise Refused(404, f"no draft {draft_id!r}")
        status = 409 if result["cancel"] == "finished" else 200
        return web.json_response(result, status=status)

    async def retry(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"failed", "error", "account_id"})
        if body.get("failed") is not True:
            raise Refused(400, '"failed": true is required (only failed drafts are retried)')
        error = body.get("error")
        if error is not None and (not isinstance(error, str) or not 0 < len(error) <= MAX_ERROR):
            raise Refused(400, '"error" must be an error type such as "errors/expired_link"')
        retried = []
        for account in self._chosen(body.get("account_id")):
            retried += await account.retry_failed(error)
        return web.json_response({"retried": retried, "count": len(retried)})

    async def resume(self, request: web.Request) -> web.Response:
        account_id = request.match_info.get("account_id")
        if account_id is None:
            account_id = (await self._body(request, {"account_id"})).get("account_id")
        found = [await account.resume() for account in self._chosen(account_id)]
        return web.json_response({"accounts": found})


def list_filters(query: Mapping[str, str]) -> tuple[set[str] | None, datetime | None]:
    """``?state=a,b`` and ``?since=ISO-8601`` of ``GET /drafts`` (``Refused`` when unreadable)."""
    states = None
    if query.get("state"):
        states = {s.strip() for s in query["state"].split(",") if s.strip()}
        unknown = states - STATES
        if unknown:
            raise Refused(400, f"unknown state(s) {sorted(unknown)}; known: {sorted(STATES)}")
    since = None
    if query.get("since"):
        try:
            since = datetime.fromisoformat(query["since"][:64])
        except ValueError:
            raise Refused(400, '"since" must be an ISO 8601 time (2026-12-01T09:00:00Z)') from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    return states, since
