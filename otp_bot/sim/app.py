"""A postpress simulator: the contract's API, and LinkedIn's e-mails behind it.

``Simulator(api_key=..., mailbox=MailTarget(...) | None)`` holds an aiohttp
``app`` serving ``POST /v1/linkedin/jobs/{draft_id}/publish|checkpoint``
exactly as docs/contract.md describes (``X-API-KEY``, body validation, the
``Published | Checkpoint`` union, both error envelopes, ``Idempotency-Key``
replays). Whenever it issues a checkpoint it composes LinkedIn's e-mail with a
fresh code (and link) and APPENDs it to ``mailbox``; it then accepts only
that input. Each draft follows a ``Script`` (faults, expired links, ...).

``GET /v1/accounts/{id}`` reports the account (``sim/account.py``: it can be
disconnected and reconnected, and the whole API taken down for a while).

Admin endpoints, outside ``/v1`` and without auth (bind to loopback), are in
``otp_bot.sim.admin``; ``otp_bot.sim.run`` serves a simulator for ``otp-bot simulate``.

(About 270 lines: the API's answer paths, in the order a request meets them,
read best in one class.)
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from otp_bot.sim.account import SimAccount, account_routes
from otp_bot.sim.admin import admin_routes, json_or_none
from otp_bot.sim.linkedin_mail import MailTarget, compose
from otp_bot.sim.mail import Post
from otp_bot.sim.script import ERROR_STATUS, Script, script_for_draft
from otp_bot.sim.state import DraftState, RecordedRequest, error_body, fault_response, next_fault
from otp_bot.sim.validate import Invalid, validate_body

log = structlog.get_logger(__name__)


_Reply = tuple[int, dict[str, Any]]


class Simulator:
    """The app, its scripting API and the record of what it received."""

    def __init__(
        self,
        *,
        api_key: str,
        account_id: str | None = None,
        mailbox: MailTarget | None = None,
        envelope: str = "problem",
        authserv_id: str = "mx.example.test",
        default_script: Callable[[str], Script] = script_for_draft,
        recipient: str | None = None,
    ) -> None:
        self._api_key = api_key
        # The To of its e-mails: the account's LinkedIn address (default: the mailbox's user).
        self._recipient = recipient
        self._account_id = account_id
        self._mailbox = mailbox
        self._post = Post(mailbox)  # delivers e-mails and records when they landed
        self.envelope = envelope
        self._authserv_id = authserv_id
        self._default_script = default_script
        self.requests: list[RecordedRequest] = []
        self.mails = self._post.mails  # (draft_id, mail), in order sent
        self.delivery_errors = self._post.errors
        self._drafts: dict[str, DraftState] = {}
        self._replays: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.account = SimAccount(account_id or "acc_sim")
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self.app.add_routes(
            [
                web.post("/v1/linkedin/jobs/{draft_id}/{endpoint:publish|checkpoint}", self._api),
                # The vendor's curl example says /api/v1: serve both spellings.
                web.post(
                    "/api/v1/linkedin/jobs/{draft_id}/{endpoint:publish|checkpoint}", self._api
                ),
                *account_routes(self),
                *admin_routes(self),
            ]
        )
        self.app.on_cleanup.append(self._cancel_deliveries)

    @property
    def api_key(self) -> str:
        return self._api_key

    # --- scripting -------------------------------------------------------

    def script(self, draft_id: str, script: Script) -> None:
        """Follow ``script`` for this draft from now on (its state starts afresh)."""
        self._drafts[draft_id] = DraftState.start(script)

    def reset(self) -> None:
        self.account.reconnect()
        self.account.bring_up()
        self._drafts.clear()
        self._replays.clear()
        self.requests.clear()
        self._post.clear()

    def draft(self, draft_id: str) -> dict[str, Any]:
        state = self._state(draft_id)
        return {
            "draft_id": draft_id,
            "job_id": state.job_id,
            "published": state.published,
            "pending": state.pending,
            "step": state.step,
            "faults_left": len(state.faults),
            **state.counters,
        }

    async def wait_for_mail(self) -> None:
        """Return once every e-mail issued so far was delivered (or failed)."""
        await self._post.wait()

    def mail_record(self, message_id: str) -> dict[str, Any]:
        """The e-mail's checkpoint type, when it was issued and each time it was APPENDed."""
        return self._post.record(message_id)

    # --- the API -----------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        draft_id, endpoint = request.match_info["draft_id"], request.match_info["endpoint"]
        body = await json_or_none(request)
        authorized, supplied = self.authorized(request)
        key = request.headers.get("Idempotency-Key")
        record = RecordedRequest(endpoint, draft_id, key, body, authorized=authorized)
        self.requests.append(record)
        refused = self.refused(record, request, supplied)
        if refused is not None:
            return refused
        state = self._state(draft_id)
        if state.script.disconnect_account and state.take("disconnects"):
            self.account.disconnect(
                state.script.disconnect_account, reconnect_after=state.script.reconnect_after
            )
        account_error = self.account.account_error()
        if account_error is not None:
            return self.answer(record, "account_error", self.error_reply(account_error))
        fault = next_fault(state, endpoint)
        if fault is not None:
            return await fault_response(record, fault)
        if state.take("slow_answers"):
            await asyncio.sleep(state.script.slow_delay)  # scripted slowness of a real answer
        digest = hashlib.sha256(await request.read()).hexdigest()
        if key is not None and key in self._replays:
            return self._replay(record, key, digest)
        reply = self._process(endpoint, draft_id, state, body, request)
        if key is not None:
            self._replays[key] = (digest, *reply)
        if state.script.timeout_endpoint in (None, endpoint) and state.take("timeout_after_accept"):
            return self.answer(record, "timeout_after_accept", self.error_reply("request_timeout"))
        return self.answer(record, "answered", reply)

    def _process(
        self, endpoint: str, draft_id: str, state: DraftState, body: Any, request: web.Request
    ) -> _Reply:
        try:
            validate_body(endpoint, body, request.content_length, self._account_id)
        except Invalid as exc:
            return self.error_reply(exc.kind, exc.detail)
        if state.published:
            return self.error_reply("action_already_performed", "This draft is already published.")
        if endpoint == "publish":
            return self._publish(draft_id, state)
        return self._solve(draft_id, state, body["input"])

    def _publish(self, draft_id: str, state: DraftState) -> _Reply:
        if state.step >= len(state.script.checkpoints):
            return self._published(state)
        return self._issue(draft_id, state)

    def _solve(self, draft_id: str, state: DraftState, text: str) -> _Reply:
        if state.pending is None:
            return self.error_reply("checkpoint_error", "No checkpoint is pending for this draft.")
        if text not in state.accepted:
            return self.error_reply("invalid_checkpoint_solution", "The input did not pass.")
        if state.take("expired_links"):
            state.pending, state.accepted = None, set()
            return self.error_reply("expired_link", "The verification link has expired.")
        if state.take("invalid_solutions"):
            state.accepted.discard(text)
            return self.error_reply("invalid_checkpoint_solution", "The input did not pass.")
        state.step += 1
        state.pending, state.accepted = None, set()
        return self._publish(draft_id, state)

    def _published(self, state: DraftState) -> _Reply:
        state.published = True
        return 200, {
            "object": "LinkedinJobPostingPublished",
            "job_state": state.script.job_state,
            "job_id": state.job_id,
        }

    def _issue(self, draft_id: str, state: DraftState) -> _Reply:
        kind = state.script.checkpoints[state.step]
        now = datetime.now(UTC)
        to = self._recipient or (self._mailbox.user if self._mailbox else "bot@example.test")
        mail = compose(kind, to, now, authserv_id=self._authserv_id)
        state.pending = kind
        forms = {"pin": mail.code, "link": mail.link or mail.code}
        state.accepted = {forms[f] for f in state.script.accept} if mail.link else {mail.code}
        batch = [mail]
        if state.script.decoy:  # a spoofed mail with another code, delivered first
            style = state.script.decoy_style
            batch.insert(0, compose(kind, to, now, authserv_id=self._authserv_id, decoy=style))
        if state.script.mail:
            late = state.take("late_mails")
            delay = state.script.late_delay if late else state.script.mail_delay
            self._post.send(draft_id, kind, batch, state.script, delay)
        log.info("sim_checkpoint_issued", draft_id=draft_id, type=kind, mails=len(batch))
        return 200, {
            "object": "LinkedinJobPostingPublishCheckpoint",
            "type": kind,
            "job_id": state.job_id,
        }

    # --- answers -------------------------------------------------------------

    def refused(
        self, record: RecordedRequest, request: web.Request, supplied: str | None
    ) -> web.Response | None:
        """The answer when the API is down or the key is wrong, else None."""
        if self.account.down():
            return self.outage(record, request)
        if not record.authorized:
            kind = "missing_credentials" if supplied is None else "invalid_credentials"
            return self.answer(record, "rejected", self.error_reply(kind, "API key not accepted"))
        return None

    def authorized(self, request: web.Request) -> tuple[bool, str | None]:
        """Whether X-API-KEY is the key (compared in constant time), and what was sent."""
        supplied = request.headers.get("X-API-KEY")
        ok = supplied is not None and secrets.compare_digest(
            supplied.encode("utf-8", "surrogateescape"), self._api_key.encode()
        )
        return ok, supplied

    def outage(self, record: RecordedRequest, request: web.Request) -> web.Response:
        """The API is down: a 503/500 answer, or the connection closed without one."""
        mode = self.account.down()
        if mode == "drop" and request.transport is not None:
            record.status, record.outcome = 0, "dropped"
            request.transport.close()  # the client sees the connection end without an answer
            return web.Response(status=503)
        reply = self.error_reply("unexpected_error" if mode == "500" else "service_unavailable")
        return self.answer(record, "outage", reply)

    def error_reply(self, kind: str, detail: str = "", envelope: str | None = None) -> _Reply:
        status = ERROR_STATUS.get(kind.removeprefix("errors/"), 500)
        return status, error_body(status, kind, detail, envelope or self.envelope)

    def answer(self, record: RecordedRequest, outcome: str, reply: _Reply) -> web.Response:
        record.status, record.outcome = reply[0], outcome
        return web.json_response(reply[1], status=reply[0])

    def _replay(self, record: RecordedRequest, key: str, digest: str) -> web.Response:
        first_digest, status, payload = self._replays[key]
        if first_digest != digest:
            detail = "Idempotency-Key reused with another body"
            reply = self.error_reply("unprocessable_entity", detail)
            return self.answer(record, "rejected", reply)
        return self.answer(record, "replayed", (status, payload))

    # --- mail --------------------------------------------------------------

    async def _cancel_deliveries(self, _app: web.Application) -> None:
        await self._post.cancel()

    def _state(self, draft_id: str) -> DraftState:
        if draft_id not in self._drafts:
            self._drafts[draft_id] = DraftState.start(self._default_script(draft_id))
        return self._drafts[draft_id]
