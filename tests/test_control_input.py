"""Hostile request bodies on the control API: 400 with a reason, never a 500 or a traceback."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests import dovecot as dc
from tests.inprocess import running

RAW_BODIES = [
    pytest.param(b"[" * 20_000 + b"]" * 20_000, "nested too deeply", id="deep-array"),
    pytest.param(b'{"draft_id": "d", "options": ' + b'{"a": ' * 5000, "nested", id="deep-object"),
    pytest.param(
        b'{"draft_id": "d", "budget": {"daily": {"currency": "EUR", "amount": 1e999}}}',
        "finite",
        id="1e999",
    ),
    pytest.param(
        b'{"draft_id": "d", "budget": {"daily": {"currency": "EUR", "amount": Infinity}}}',
        "finite",
        id="Infinity",
    ),
    pytest.param(b'{"draft_id": "d", "x": NaN}', "finite", id="NaN"),
    pytest.param(b'{"draft_id": "d", "x": -Infinity}', "finite", id="-Infinity"),
]

BAD_BUDGETS = [
    pytest.param({"daily": {"currency": "EUR", "amount": 5, "extra": 1}}, id="unknown-inner-key"),
    pytest.param({"daily": {"currency": "EUR", "amount": 5}, "weekly": {}}, id="two-periods"),
    pytest.param({"hourly": {"currency": "EUR", "amount": 5}}, id="unknown-period"),
    pytest.param({"daily": {"currency": "EUR"}}, id="no-amount"),
    pytest.param({"daily": {"currency": "EUR", "amount": -3}}, id="negative"),
    pytest.param({"daily": {"currency": "EUR", "amount": True}}, id="bool-amount"),
    pytest.param({"daily": {"currency": "\x1b[31m", "amount": 5}}, id="control-currency"),
    pytest.param({"daily": 5}, id="not-an-object"),
    pytest.param([], id="list"),
]


# Declared JSON, as the API requires of a POST body (else 415, before any parsing).
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("raw", "says"), RAW_BODIES)
async def test_hostile_json_is_400(dovecot: dc.Dovecot, raw: bytes, says: str) -> None:
    """Deep nesting and non-finite numbers: 400 naming the problem, nothing logged as a crash."""
    async with running(dovecot) as daemon:
        with capture_logs() as logs:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    daemon.base_url + "/drafts", data=raw, headers=JSON | daemon.headers()
                ) as r,
            ):
                status, answer = r.status, await r.json()
        assert status == 400, answer
        assert says in answer["error"]
        assert not [line for line in logs if line.get("log_level") in ("error", "critical")]
        assert daemon.sims["acc_inproc"].requests == []


@pytest.mark.parametrize("budget", BAD_BUDGETS)
async def test_malformed_budget_is_400(dovecot: dc.Dovecot, budget: Any) -> None:
    """A budget with unknown keys or a bad amount is refused before any publish."""
    async with running(dovecot) as daemon:
        status, answer = await daemon.request(
            "POST", "/drafts", {"draft_id": "d", "budget": budget}
        )
        assert status == 400, answer
        assert "budget" in answer["error"]
        assert daemon.sims["acc_inproc"].requests == []


async def test_well_formed_budget_is_accepted(dovecot: dc.Dovecot) -> None:
    """The contract's budget shape still goes through."""
    budget = {"monthly": {"currency": "EUR", "amount": 12.5}}
    async with running(dovecot) as daemon:
        body = {"draft_id": "d-budget", "mode": "PROMOTED", "budget": budget}
        status, _draft = await daemon.request("POST", "/drafts", body)
        assert status == 202
