"""The CLI's side of the control API: ``publish``, ``status`` and ``health``.

Standard library only (``urllib.request``): these are short local calls, and
only ``otp_bot.postpress.client`` may use the aiohttp client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from otp_bot.config import ControlSettings, split_host_port
from otp_bot.control import token as control_token
from otp_bot.errors import OtpBotError

# The daemon answers from memory; a slow answer means it is stuck.
TIMEOUT = 10.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (mapped, not bound)


class ControlError(OtpBotError):
    """The daemon could not be reached, or refused the request."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


class ControlClient:
    """Calls one daemon's control API."""

    def __init__(
        self,
        addr: str,
        token: str | None = None,
        timeout: float = TIMEOUT,
        *,
        state_dir: Path | None = None,
    ) -> None:
        """``token``: OTP_BOT_CONTROL_TOKEN; else the daemon's own, read from
        ``state_dir`` at each call (the daemon writes it when it starts)."""
        host, port = split_host_port(addr)
        host = _WILDCARDS.get(host, host)
        self.where = f"{host}:{port}"
        self._base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._token = token
        self._state_dir = state_dir
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: ControlSettings) -> ControlClient:
        token = settings.control_token.get_secret_value() if settings.control_token else None
        return cls(settings.control_addr, token, state_dir=settings.state_dir)

    def _bearer(self) -> str | None:
        if self._token or self._state_dir is None:
            return self._token
        return control_token.read(self._state_dir)

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        """One request; any HTTP status is a ``Reply``, no answer is ``ControlError``."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._base + path, data=data, method=method)  # noqa: S310 (http only)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        bearer = self._bearer()
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return Reply(response.status, _decode(response.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _decode(exc.read()))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            words = reason.strerror if isinstance(reason, OSError) else None
            raise ControlError(
                f"no otp-bot daemon answers on {self.where} ({(words or str(reason)).lower()}); "
                "is `otp-bot run` running with the same OTP_BOT_CONTROL_ADDR?"
            ) from None

    def checked(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.call(method, path, body)
        if reply.status >= 400:
            self._refused(reply)
        return reply.body

    def _refused(self, reply: Reply) -> None:
        message = reply.body.get("error") if isinstance(reply.body, dict) else None
        raise ControlError(
            f"the daemon refused: {message or f'HTTP {reply.status}'}",
            hint=self._token_hint() if reply.status == 401 else "",
        )

    def _token_hint(self) -> str:
        if self._token:
            return "OTP_BOT_CONTROL_TOKEN differs from the running daemon's"
        where = self._state_dir / control_token.TOKEN_FILE if self._state_dir else "its state dir"
        return (
            f"the daemon keeps its token in {where}: run as a user who can read it, with "
            "OTP_BOT_STATE_DIR set as the daemon has it (or set OTP_BOT_CONTROL_TOKEN)"
        )

    def publish(
        self,
        draft_id: str,
        *,
        checkpoint: str | None = None,
        account_id: str | None = None,
        retry: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"draft_id": draft_id}
        if checkpoint:
            body["checkpoint"] = checkpoint
        if retry:
            body["retry"] = True
        if account_id:
            body["account_id"] = account_id
        result: dict[str, Any] = self.checked("POST", "/drafts", body)
        return result

    def drafts(
        self,
        draft_id: str | None = None,
        account_id: str | None = None,
        *,
        state: str | None = None,
        since: str | None = None,
    ) -> list[Any]:
        """One draft, or the drafts (of an account, in a state, changed since an ISO time)."""
        wanted = {"account_id": account_id, "state": state, "since": since}
        filters = {k: v for k, v in wanted.items() if v}
        query = f"?{urlencode(filters)}" if filters else ""
        if draft_id is None:
            return list(self.checked("GET", "/drafts" + query))
        return [self.checked("GET", f"/drafts/{quote(draft_id, safe='')}{query}")]

    def cancel(self, draft_id: str, account_id: str | None = None) -> Reply:
        """Cancel a draft; 200 (cancelled, or pending its call), 409 when already finished."""
        body = {"account_id": account_id} if account_id else {}
        reply = self.call("POST", f"/drafts/{quote(draft_id, safe='')}/cancel", body)
        if reply.status >= 400 and reply.status != 409:
            self._refused(reply)
        return reply

    def retry_failed(self, error: str | None = None, account_id: str | None = None) -> Any:
        body: dict[str, Any] = {"failed": True}
        if error:
            body["error"] = error
        if account_id:
            body["account_id"] = account_id
        return self.checked("POST", "/drafts/retry", body)

    def resume(self, account_id: str | None = None) -> Any:
        body = {"account_id": account_id} if account_id else {}
        return self.checked("POST", "/resume", body)

    def health(self, *, live: bool = False) -> Reply:
        return self.call("GET", "/healthz?live=1" if live else "/healthz")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode("utf-8", "replace")}


_COLUMNS = (
    ("DRAFT", "draft_id"),
    ("STATE", "state"),
    ("CHECKPOINT", "checkpoint"),
    ("JOB", "job_id"),
    ("JOB STATE", "job_state"),
    ("ERROR", "error"),
    ("UPDATED", "updated_at"),
)


def table(drafts: list[dict[str, Any]]) -> str:
    """Drafts as an aligned text table (``otp-bot status`` without ``--json``)."""
    columns = list(_COLUMNS)
    if len({d.get("account_id") for d in drafts}) > 1:
        columns.insert(0, ("ACCOUNT", "account_id"))
    rows = [[title for title, _ in columns]]
    for draft in drafts:
        rows.append([_cell(draft.get(key), key) for _, key in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _cell(value: object, key: str) -> str:
    if value is None:
        return "-"
    text = str(value)
    if key == "updated_at":
        return text[:19].replace("T", " ")
    return text


# Past this many accounts, ``otp-bot health`` says how many watch instead of listing them.
HEALTH_LINE_ACCOUNTS = 10


def health_line(reply: Reply) -> str:
    """One line for ``otp-bot health``: the verdict and, when unhealthy, why."""
    body = reply.body if isinstance(reply.body, dict) else {}
    accounts = body.get("accounts") or []
    if reply.status == 200:
        verdict = "alive: " if body.get("live") else "healthy: "
        if len(accounts) > HEALTH_LINE_ACCOUNTS:  # a fleet: counts, not a list
            return verdict + f"{body.get('watching')} of {len(accounts)} accounts watching"
        parts = [f"{a.get('account_id')} {a.get('mailbox')}" for a in accounts]
        return verdict + (", ".join(parts) or "no accounts")
    problems = [f"{a.get('account_id')}: {a.get('problem')}" for a in accounts if a.get("problem")]
    return "unhealthy: " + ("; ".join(problems) or str(body.get("error") or reply.status))
