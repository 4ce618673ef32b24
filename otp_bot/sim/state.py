"""The simulator's bookkeeping: requests received, drafts' progress, error bodies."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from otp_bot.sim.script import Fault, Script


@dataclass(slots=True)
class RecordedRequest:
    """One request as the simulator saw it (the API key itself is never kept)."""

    endpoint: str
    draft_id: str
    idempotency_key: str | None
    body: Any
    authorized: bool
    status: int = 0
    # answered | replayed | fault | timeout_after_accept | rejected | account_error
    # | outage | dropped
    outcome: str = ""
    at: float = field(default_factory=time.time)  # when it was received (epoch seconds)


@dataclass(slots=True)
class DraftState:
    """One simulated draft: where it is in its script, what it accepts."""

    script: Script
    job_id: str = field(default_factory=lambda: str(4_000_000_000 + secrets.randbelow(10**9)))
    step: int = 0  # index into script.checkpoints
    accepted: set[str] = field(default_factory=set)  # inputs the pending checkpoint takes
    pending: str | None = None  # the checkpoint type waiting for an input
    published: bool = False
    faults: list[Fault] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, script: Script) -> DraftState:
        counters = {
            "invalid_solutions": script.invalid_solutions,
            "expired_links": script.expired_links,
            "timeout_after_accept": script.timeout_after_accept,
            "slow_answers": script.slow_answers,
            "late_mails": script.late_mails,
            "disconnects": 1 if script.disconnect_account else 0,
        }
        return cls(
            script,
            published=script.already_published,
            faults=list(script.faults),
            counters=counters,
        )

    def take(self, counter: str) -> bool:
        if self.counters[counter] > 0:
            self.counters[counter] -= 1
            return True
        return False


def next_fault(state: DraftState, endpoint: str) -> Fault | None:
    for index, fault in enumerate(state.faults):
        if fault.endpoint in (None, endpoint):
            return state.faults.pop(index)
    return None


def error_body(status: int, kind: str, detail: str, envelope: str) -> dict[str, Any]:
    kind = kind if kind.startswith("errors/") else f"errors/{kind}"
    title = kind.removeprefix("errors/").replace("_", " ").capitalize()
    request_id = f"req_{secrets.token_hex(8)}"
    if envelope == "error":
        return {"error": {"code": kind, "message": detail or title, "request_id": request_id}}
    problem = {"title": title, "type": kind, "status": status, "instance": request_id}
    return {**problem, "detail": detail} if detail else problem


async def fault_response(record: RecordedRequest, fault: Fault) -> web.Response:
    """Serve a scripted fault instead of the real answer (nothing is processed)."""
    if fault.delay:
        await asyncio.sleep(fault.delay)  # scripted slowness, for client timeouts
    record.status, record.outcome = fault.http_status, "fault"
    headers = {**fault.headers}
    if fault.retry_after:
        headers["Retry-After"] = fault.retry_after
    text = fault.body
    if text is None:
        text = json.dumps(error_body(fault.http_status, fault.type, "", fault.envelope))
    return web.Response(
        status=fault.http_status, text=text, headers=headers, content_type=fault.content_type
    )
