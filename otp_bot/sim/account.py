"""The simulated postpress account, and the API's outages.

``SimAccount`` is what ``GET /v1/accounts/{id}`` reports, and it can be
disconnected (every publish and checkpoint answers an account-level error
such as ``errors/disconnected_account`` until it is reconnected, by hand or
after ``reconnect_after`` seconds) and the whole API can be taken down (every
request, the account read included, answers 503 or has its connection
dropped, for a while or until brought back up). Tests drive it directly, the
admin API drives it over HTTP (``POST /_sim/account``, ``POST /_sim/outage``),
and a draft's ``Script`` can disconnect it (``disconnect_account``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from otp_bot.sim.script import ERROR_STATUS
from otp_bot.sim.state import RecordedRequest

# What an outage does to each request: answer 503 (a gateway's page), answer
# 500 unexpected_error, or close the connection without an answer.
OUTAGE_MODES = ("503", "500", "drop")
# The source status a disconnected account reports (Unipile's for a lost login).
DISCONNECTED_STATUS = "CREDENTIALS"
# 401 types that are about a checkpoint's input, not the account.
_CHECKPOINT_401 = frozenset({"invalid_checkpoint_solution", "checkpoint_error", "expired_link"})


def is_account_level(kind: str) -> bool:
    """An errors/... type the contract answers 401/403 about the account itself."""
    name = kind.removeprefix("errors/")
    return ERROR_STATUS.get(name) in (401, 403) and name not in _CHECKPOINT_401


@dataclass(slots=True)
class SimAccount:
    """The account's connection and the API's availability (monotonic deadlines)."""

    account_id: str
    status: str = "OK"
    error: str | None = None  # errors/... answered while disconnected
    reconnect_at: float | None = None
    outage: str | None = None  # one of OUTAGE_MODES while the API is down
    outage_until: float | None = None
    probes: int = 0  # GET /accounts/{id} requests answered (authorized)

    def disconnect(
        self,
        error: str = "errors/disconnected_account",
        *,
        status: str = DISCONNECTED_STATUS,
        reconnect_after: float | None = None,
    ) -> None:
        """Answer ``error`` to every publish and checkpoint until reconnected."""
        kind = error if error.startswith("errors/") else f"errors/{error}"
        if not is_account_level(kind):
            raise ValueError(f"{kind} is not an account-level (401/403) error type")
        self.error, self.status = kind, status
        self.reconnect_at = None if reconnect_after is None else time.monotonic() + reconnect_after

    def reconnect(self) -> None:
        self.error, self.status, self.reconnect_at = None, "OK", None

    def take_down(self, mode: str = "503", *, seconds: float | None = None) -> None:
        """Fail every API request (``mode``) for ``seconds``, or until ``bring_up``."""
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode must be one of {OUTAGE_MODES}")
        self.outage = mode
        self.outage_until = None if seconds is None else time.monotonic() + seconds

    def bring_up(self) -> None:
        self.outage, self.outage_until = None, None

    def down(self) -> str | None:
        """The outage mode now in force, if any (a timed outage ends by itself)."""
        if self.outage_until is not None and time.monotonic() >= self.outage_until:
            self.bring_up()
        return self.outage

    def account_error(self) -> str | None:
        """The account-level error now answered, if any (a timed disconnect ends by itself)."""
        if self.reconnect_at is not None and time.monotonic() >= self.reconnect_at:
            self.reconnect()
        return self.error

    def body(self) -> dict[str, Any]:
        """The ``Account`` object of the contract (Unipile's v1 shape)."""
        self.account_error()
        return {
            "object": "Account",
            "type": "LINKEDIN",
            "id": self.account_id,
            "name": f"Simulated LinkedIn account {self.account_id}",
            "created_at": "2026-01-05T09:00:00.000Z",
            "sources": [{"id": f"{self.account_id}_MESSAGING", "status": self.status}],
        }

    def to_json(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "account_id": self.account_id,
            "status": self.status,
            "error": self.account_error(),
            "reconnect_in": None if self.reconnect_at is None else self.reconnect_at - now,
            "outage": self.down(),
            "outage_left": None if self.outage_until is None else self.outage_until - now,
            "probes": self.probes,
        }

    def apply(self, data: dict[str, Any]) -> None:
        """``POST /_sim/account`` ``{"connected", "error"?, "status"?, "reconnect_after"?}``."""
        if data.get("connected", True):
            self.reconnect()
            return
        self.disconnect(
            str(data.get("error") or "errors/disconnected_account"),
            status=str(data.get("status") or DISCONNECTED_STATUS),
            reconnect_after=_seconds(data.get("reconnect_after")),
        )

    def apply_outage(self, data: dict[str, Any]) -> None:
        """``POST /_sim/outage`` ``{"mode": "503"|"500"|"drop"|null, "seconds"?}``."""
        mode = data.get("mode")
        if mode is None:
            self.bring_up()
            return
        self.take_down(str(mode), seconds=_seconds(data.get("seconds")))


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("durations must be non-negative numbers of seconds")
    return float(value)


class ApiFront(Protocol):
    """What the account endpoint needs from the simulator (``app.Simulator`` is one;
    a protocol, so that this module does not import ``app``, which imports it)."""

    account: SimAccount
    requests: list[RecordedRequest]

    def authorized(self, request: web.Request) -> tuple[bool, str | None]: ...

    def refused(
        self, record: RecordedRequest, request: web.Request, supplied: str | None
    ) -> web.Response | None: ...

    def error_reply(
        self, kind: str, detail: str = "", envelope: str | None = None
    ) -> tuple[int, dict[str, Any]]: ...

    def answer(
        self, record: RecordedRequest, outcome: str, reply: tuple[int, dict[str, Any]]
    ) -> web.Response: ...


def account_routes(sim: ApiFront) -> list[web.RouteDef]:
    """``GET /v1/accounts/{id}`` (and the ``/api/v1`` spelling): the contract's ``Account``."""

    async def read(request: web.Request) -> web.Response:
        authorized, supplied = sim.authorized(request)
        record = RecordedRequest("account", "", None, None, authorized=authorized)
        sim.requests.append(record)
        refused = sim.refused(record, request, supplied)
        if refused is not None:
            return refused
        if request.match_info["account_id"] != sim.account.account_id:
            reply = sim.error_reply("resource_not_found", "No such account")
            return sim.answer(record, "rejected", reply)
        sim.account.probes += 1
        return sim.answer(record, "answered", (200, sim.account.body()))

    return [web.get("/{prefix:v1|api/v1}/accounts/{account_id}", read)]
