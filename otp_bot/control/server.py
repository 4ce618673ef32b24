"""The control API: hand drafts to the daemon, read their state, health, metrics.

    POST /drafts          {"draft_id", "options"?, "checkpoint"?, "account_id"?, "retry"?}
    GET  /drafts          every draft (?account_id=, ?state=S[,S2], ?since=ISO-8601 filters)
    GET  /drafts/{id}     one draft
    GET  /healthz         200 when every account is healthy, else 503 (the body says why)
                          ?live=1: 200 unless a mailbox loop is stuck or a task crashed
    GET  /metrics         Prometheus text
    GET  /events          the draft events, server-sent (``control/events.py``)
    POST /drafts/{id}/cancel, POST /drafts/retry, POST /resume,
    POST /accounts/{id}/resume                   (``control/operator.py``)

One server per distinct ``OTP_BOT_CONTROL_ADDR``; the accounts sharing an
address share its server. With ``OTP_BOT_CONTROL_TOKEN`` every request needs
``Authorization: Bearer <token>``; a non-loopback address without a token is
refused at startup. Without it, the daemon's own token (``control/token.py``)
guards every endpoint but ``/healthz`` and ``/metrics`` (readable for probes
and scrapers on this host), and ``control/guard.py`` refuses what a browser
page of another site could send.

(Over 250 lines: one aiohttp app, its middlewares (errors, same origin, auth)
and its handlers; the operator controls are in ``control.operator``.)
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiohttp import web

from otp_bot.config import is_loopback, split_host_port
from otp_bot.control.events import EventSource, EventStream
from otp_bot.control.guard import foreign, is_json
from otp_bot.control.operator import OperatedAccount, Operator, Refused, list_filters
from otp_bot.errors import ConfigError, InputRejected
from otp_bot.postpress.wire import PUBLISH_OPTIONS

log = structlog.get_logger(__name__)

_BODY_KEYS = frozenset(
    {"draft_id", "options", "checkpoint", "account_id", "retry", *PUBLISH_OPTIONS}
)
# Readable on this host without the daemon's own token (probes, scrapers); they
# carry no draft and act on nothing.
OPEN_WITHOUT_TOKEN = frozenset({"/healthz", "/metrics"})
# A draft request is a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024
# An idle keep-alive connection must not hold shutdown up (SIGTERM: 3 s in all).
SHUTDOWN_TIMEOUT = 0.5

JsonDict = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlledAccount(Protocol):
    """What the control API needs from one account (``daemon.account.Account``)."""

    @property
    def account_id(self) -> str: ...

    def drafts(self) -> list[JsonDict]: ...

    def draft(self, draft_id: str) -> JsonDict | None: ...

    async def add_draft(
        self,
        draft_id: str,
        options: Mapping[str, Any] | None,
        checkpoint: str | None,
        *,
        retry: bool = False,
    ) -> JsonDict: ...

    def health(self) -> JsonDict: ...

    @property
    def operations(self) -> OperatedAccount: ...  # its operator controls (control.operator)

    def progressing(self) -> bool: ...


class MetricsPage(Protocol):
    """The metrics the API serves at ``/metrics`` (``daemon.metrics.Metrics``)."""

    content_type: str

    def render(self) -> bytes: ...


class BadRequest(Exception):
    """A request the API refuses; ``status`` and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_bind(addr: str, token: str | None) -> None:
    """Refuse to expose an unauthenticated control API beyond this host."""
    host, _port = split_host_port(addr)
    if not token and not is_loopback(host):
        raise ConfigError(
            f"OTP_BOT_CONTROL_ADDR: {host} is not a loopback address; "
            "set OTP_BOT_CONTROL_TOKEN to expose the control API beyond this host"
        )


class ControlServer:
    """The aiohttp app and its listening site for one control address."""

    def __init__(
        self,
        addr: str,
        accounts: Sequence[ControlledAccount],
        metrics: MetricsPage,
        *,
        token: str | None = None,
        generated: bool = False,
        before_metrics: Callable[[], None] = lambda: None,
        events: EventSource | None = None,
    ) -> None:
        """``token``: required on every request; ``generated``: it is the daemon's own
        token, not asked of ``OPEN_WITHOUT_TOKEN``, and the same-origin rules apply."""
        check_bind(addr, token)
        self.host, self.port = split_host_port(addr)
        self._accounts = list(accounts)
        self._metrics = metrics
        self.token_text = token or None  # to tell whether a reload changed it
        self._token = token.encode() if token else None
        self.generated = generated
        self._explicit = bool(token) and not generated
        self._before_metrics = before_metrics
        self._runner: web.AppRunner | None = None
        self.app = web.Application(
            client_max_size=MAX_BODY_BYTES,
            middlewares=[self._errors, self._same_origin, self._auth],
        )
        self.app.add_routes(
            [
                web.post("/drafts", self._post_draft),
                web.get("/drafts", self._list_drafts),
                web.get("/drafts/{draft_id}", self._get_draft),
                web.get("/healthz", self._healthz),
                web.get("/metrics", self._metrics_text),
                *Operator(self._operated, _json_object).routes(),
            ]
        )
        if events is not None:
            self.app.add_routes([web.get("/events", EventStream(events).handle)])

    def set_accounts(self, accounts: Sequence[ControlledAccount]) -> None:
        """Answer for these accounts from now on (a reload added or removed some)."""
        self._accounts[:] = accounts

    def _operated(self) -> list[OperatedAccount]:
        """The operator controls of the accounts it answers for now."""
        return [account.operations for account in self._accounts]

    async def start(self) -> None:
        """Listen on the control address (ConfigError when it is taken)."""
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"OTP_BOT_CONTROL_ADDR: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        log.info("control_listening", host=self.host, port=self.port, auth=bool(self._token))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- middlewares -------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (BadRequest, Refused) as exc:
            return _error(exc.status, str(exc))
        except InputRejected as exc:
            return _error(400, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as exc:
            return _error(exc.status, exc.reason)

    @web.middleware
    async def _same_origin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = None if self._explicit else foreign(request.headers, self.host, self.port)
        posted = request.method == "POST" and request.body_exists
        if reason is None and posted and not is_json(request.content_type):
            reason = "the body must be sent as Content-Type: application/json"
        if reason is not None:
            log.warning("control_refused", path=request.path, remote=request.remote, reason=reason)
            status = 415 if reason.startswith("the body") else 403
            return _error(status, reason)
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # The daemon's own token guards everything but the probes and the scrapes.
        guarded = self._explicit or request.path not in OPEN_WITHOUT_TOKEN
        if self._token is not None and guarded:
            scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                supplied.strip().encode(), self._token
            ):
                log.warning("control_unauthorized", path=request.path, remote=request.remote)
                response = _error(401, "missing or wrong bearer token")
                response.headers["WWW-Authenticate"] = 'Bearer realm="otp-bot"'
                return response
        return await handler(request)

    # --- handlers ------------------------------------------------------------

    async def _post_draft(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        # JSON types only: the worker checks the draft itself (InputRejected -> 400).
        draft_id = body.get("draft_id")
        if not isinstance(draft_id, str):
            raise BadRequest(400, '"draft_id" must be a string')
        checkpoint = body.get("checkpoint")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise BadRequest(400, '"checkpoint" must be a string')
        retry = body.get("retry", False)
        if not isinstance(retry, bool):
            raise BadRequest(400, '"retry" must be true or false')
        account = self._account_for(body.get("account_id"))
        before = account.draft(draft_id)
        draft = await account.add_draft(draft_id, _options(body), checkpoint, retry=retry)
        # Queued now: a new draft, or a failed one retried (that always re-queues it).
        queued = before is None or (retry and before.get("state") == "failed")
        log.debug(
            "control_draft_posted",
            account_id=account.account_id,
            draft_id=draft_id,
            checkpoint=checkpoint,
            new=before is None,
            retry=retry,
        )
        return web.json_response(draft, status=202 if queued else 200)

    async def _list_drafts(self, request: web.Request) -> web.Response:
        wanted_account = request.query.get("account_id")
        states, since = list_filters(request.query)
        drafts = [
            draft
            for account in self._accounts
            if wanted_account in (None, account.account_id)
            for draft in account.operations.find_drafts(states, since)
        ]
        drafts.sort(key=lambda d: str(d.get("updated_at") or ""), reverse=True)
        return web.json_response(drafts)

    async def _get_draft(self, request: web.Request) -> web.Response:
        draft_id = request.match_info["draft_id"]
        wanted = request.query.get("account_id")
        found = [
            draft
            for account in self._accounts
            if wanted in (None, account.account_id)
            if (draft := account.draft(draft_id)) is not None
        ]
        if not found:
            raise BadRequest(404, f"no draft {draft_id!r}")
        if len(found) > 1:
            raise BadRequest(409, f"draft {draft_id!r} exists in several accounts: ?account_id=")
        return web.json_response(found[0])

    async def _healthz(self, request: web.Request) -> web.Response:
        live = request.query.get("live", "0") not in ("0", "false")  # ?live, ?live=1
        accounts = [account.health() for account in self._accounts]
        if live:  # liveness: what a restart fixes (the watchdog's rule)
            healthy = all(account.progressing() for account in self._accounts)
        else:
            healthy = all(item.get("healthy") for item in accounts)
        watching = sum(1 for item in accounts if item.get("mailbox") == "watching")
        body: JsonDict = {
            "status": "ok" if healthy else "unhealthy",
            "watching": watching,  # of len(accounts): a fleet's start-up, at a glance
            "accounts": accounts,
        }
        if live:
            body["live"] = True
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics_text(self, _request: web.Request) -> web.Response:
        self._before_metrics()
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = self._metrics.content_type
        return response

    def _account_for(self, account_id: object) -> ControlledAccount:
        if account_id is None:
            if len(self._accounts) == 1:
                return self._accounts[0]
            names = ", ".join(a.account_id for a in self._accounts)
            raise BadRequest(400, f'several accounts share this API ({names}): give "account_id"')
        for account in self._accounts:
            if account.account_id == account_id:
                return account
        raise BadRequest(404, f"no account {account_id!r} on this control API")


async def _json_object(request: web.Request) -> JsonDict:
    try:
        body = json.loads(await request.read(), parse_constant=_no_constant, parse_float=_finite)
    except NonFinite:
        raise BadRequest(400, "numbers must be finite (no NaN, Infinity or 1e999)") from None
    except RecursionError:  # the C decoder's own depth guard: "[[[[...", far past any draft
        raise BadRequest(400, "the body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return body


class NonFinite(ValueError):
    """A JSON number Python would read as infinite or NaN."""


def _no_constant(name: str) -> float:
    raise NonFinite(name)  # NaN, Infinity, -Infinity: not JSON (RFC 8259), accepted by json


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise NonFinite(text)
    return value


async def _json_body(request: web.Request) -> JsonDict:
    body = await _json_object(request)
    unknown = set(body) - _BODY_KEYS
    if unknown:
        raise BadRequest(400, f"unknown fields: {', '.join(sorted(unknown))}")
    return body


def _options(body: JsonDict) -> JsonDict | None:
    """Publish options, given as ``"options": {...}`` or as top-level fields."""
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest(400, '"options" must be a JSON object')
    merged = {**(options or {}), **{k: body[k] for k in PUBLISH_OPTIONS if k in body}}
    return merged or None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)
