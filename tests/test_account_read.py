"""GET /accounts/{id}: the client's account read against the simulator, and the simulator's
account (disconnect, reconnect) and outages (503, 500, dropped connections)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from otp_bot.errors import AccountError, DraftError, ProtocolError, TransientError
from otp_bot.postpress.client import PostpressClient, RetryPolicy
from otp_bot.postpress.wire import AccountStatus, Published, decode_account
from otp_bot.sim.app import Simulator
from otp_bot.sim.script import Script

API_KEY = "pp_test_account_read_k3y"
ACCOUNT = "acc_read_01"
NO_WAIT = RetryPolicy(attempts=2, max_time=60, wait=False)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Simulator, str]]:
    """A simulator on a free loopback port and its base URL."""
    sim = Simulator(api_key=API_KEY, account_id=ACCOUNT)
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    yield sim, str(server.make_url("/v1"))
    await server.close()


def client(base_url: str, *, api_key: str = API_KEY, account: str = ACCOUNT) -> PostpressClient:
    return PostpressClient(base_url=base_url, api_key=api_key, account_id=account, retry=NO_WAIT)


async def test_account_read_reports_a_usable_account(served: tuple[Simulator, str]) -> None:
    """A connected account reads as usable, with its sources, in one request."""
    sim, base_url = served
    async with client(base_url) as api:
        found = await api.account()
    assert found == AccountStatus(
        account_id=ACCOUNT,
        name=f"Simulated LinkedIn account {ACCOUNT}",
        type="LINKEDIN",
        sources=((f"{ACCOUNT}_MESSAGING", "OK"),),
    )
    assert found.usable
    assert [r.endpoint for r in sim.requests] == ["account"]
    assert sim.account.probes == 1


async def test_disconnected_account_reads_as_not_usable_and_refuses_work(
    served: tuple[Simulator, str],
) -> None:
    """While disconnected, the read says CREDENTIALS and every publish answers the error."""
    sim, base_url = served
    sim.account.disconnect("errors/disconnected_account")
    async with client(base_url) as api:
        found = await api.account()
        assert (found.usable, found.statuses) == (False, ["CREDENTIALS"])
        for draft_id in ("d1", "d2"):
            with pytest.raises(AccountError) as caught:
                await api.publish(draft_id)
            assert caught.value.type == "errors/disconnected_account"
        sim.account.reconnect()
        assert (await api.account()).usable
        sim.script("d1", Script(checkpoints=()))
        assert isinstance(await api.publish("d1"), Published)


async def test_script_disconnects_and_the_account_reconnects_by_itself(
    served: tuple[Simulator, str],
) -> None:
    """A draft's script disconnects the account for every draft, until reconnect_after passes."""
    sim, base_url = served
    sim.script(
        "first", Script(disconnect_account="errors/expired_credentials", reconnect_after=0.3)
    )
    sim.script("other", Script(checkpoints=()))
    async with client(base_url) as api:
        with pytest.raises(AccountError) as caught:
            await api.publish("first")
        assert caught.value.type == "errors/expired_credentials"
        with pytest.raises(AccountError):
            await api.publish("other")
        deadline = time.monotonic() + 5
        while not (await api.account()).usable:  # polls the simulated account's own clock
            assert time.monotonic() < deadline, "the account never reconnected"
            await asyncio.sleep(0.05)
        assert isinstance(await api.publish("other"), Published)
    assert [r.outcome for r in sim.requests][:2] == ["account_error", "account_error"]


@pytest.mark.parametrize(
    ("wrong", "expected", "error_type"),
    [
        ({"api_key": "pp_test_not_the_key"}, AccountError, "errors/invalid_credentials"),
        ({"account": "acc_someone_else"}, DraftError, "errors/resource_not_found"),
    ],
    ids=["401-wrong-key", "404-unknown-account"],
)
async def test_account_read_errors(
    served: tuple[Simulator, str], wrong: dict[str, str], expected: type, error_type: str
) -> None:
    """A wrong key is an AccountError (401); an unknown account a DraftError (404); no key leaks."""
    _sim, base_url = served
    async with client(base_url, **wrong) as api:
        with capture_logs() as logs, pytest.raises(expected) as caught:
            await api.account()
    assert caught.value.type == error_type
    assert "pp_test_not_the_key" not in str(caught.value) + repr(logs)


@pytest.mark.parametrize("mode", ["503", "500", "drop"])
async def test_outage_fails_every_call_as_transient(
    served: tuple[Simulator, str], mode: str
) -> None:
    """An outage (503, 500 or a dropped connection) is transient for the read and for publish."""
    sim, base_url = served
    sim.account.take_down(mode)
    async with client(base_url) as api:
        with pytest.raises(TransientError):
            await api.account()
        with pytest.raises(TransientError):
            await api.publish("d1")
        sim.account.bring_up()
        assert (await api.account()).usable
    outcomes = [r.outcome for r in sim.requests]
    down = "dropped" if mode == "drop" else "outage"
    # read, then publish's 2 attempts (aiohttp may re-send once on a dropped keep-alive)
    assert outcomes[-1] == "answered"
    assert outcomes[:-1] == [down] * len(outcomes[:-1])
    assert len(outcomes) - 1 >= 3


async def test_timed_outage_ends_by_itself(served: tuple[Simulator, str]) -> None:
    """take_down(seconds=...) brings the API back after that long, with no call to bring_up."""
    sim, base_url = served
    sim.account.take_down("503", seconds=0.2)
    async with client(base_url) as api:
        with pytest.raises(TransientError):
            await api.account()
        deadline = time.monotonic() + 5
        while sim.account.down():  # the simulator's own monotonic deadline, polled
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert (await api.account()).usable


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"object": "Checkpoint"}',
        b'{"object": "Account", "id": "x"}',
        b'{"object": "Account", "id": "x", "sources": [1]}',
        b'{"object": "Account", "id": "x", "sources": [{"id": "s"}]}',
        b'{"object": "Account", "sources": []}',
        b"not json",
    ],
)
def test_unreadable_account_is_a_protocol_error(body: bytes) -> None:
    """An Account body missing what the contract promises is a ProtocolError, never a guess."""
    with pytest.raises(ProtocolError):
        decode_account(body, "application/json", "account read")


def test_account_usable_needs_every_source_ok() -> None:
    """No source, or any source not OK, means the account needs attention."""
    raw = {"object": "Account", "id": "a", "sources": [{"id": "s1", "status": "OK"}]}
    assert decode_account(json.dumps(raw).encode(), "application/json", "x").usable
    raw["sources"] = [{"id": "s1", "status": "OK"}, {"id": "s2", "status": "STOPPED"}]
    assert not decode_account(json.dumps(raw).encode(), "application/json", "x").usable
    raw["sources"] = []
    assert not decode_account(json.dumps(raw).encode(), "application/json", "x").usable


async def test_admin_api_disconnects_reconnects_and_takes_the_api_down() -> None:
    """POST /_sim/account and /_sim/outage drive the account and the outage over HTTP."""
    sim = Simulator(api_key=API_KEY, account_id=ACCOUNT)
    async with TestClient(TestServer(sim.app, host="127.0.0.1")) as http:

        async def admin(path: str, body: Any = None) -> tuple[int, Any]:
            response = await (http.post(path, json=body) if body is not None else http.get(path))
            return response.status, await response.json()

        status, state = await admin("/_sim/account", {"connected": False, "reconnect_after": 60})
        assert (status, state["status"], state["error"]) == (
            200,
            "CREDENTIALS",
            "errors/disconnected_account",
        )
        read = await http.get(f"/v1/accounts/{ACCOUNT}", headers={"X-API-KEY": API_KEY})
        assert (await read.json())["sources"][0]["status"] == "CREDENTIALS"
        assert (await admin("/_sim/account", {"connected": True}))[1]["error"] is None
        bad = await admin("/_sim/account", {"connected": False, "error": "errors/expired_link"})
        assert bad[0] == 400  # not an account-level type
        assert (await admin("/_sim/outage", {"mode": "503", "seconds": 30}))[1]["outage"] == "503"
        down = await http.get(f"/v1/accounts/{ACCOUNT}", headers={"X-API-KEY": API_KEY})
        assert down.status == 503
        assert (await admin("/_sim/outage", {"mode": "teapot"}))[0] == 400
        assert (await admin("/_sim/outage", {"mode": None}))[1]["outage"] is None
        await admin("/_sim/outage", {"mode": "500"})
        assert (await admin("/_sim/reset", {}))[0] == 200
        assert (await admin("/_sim/account"))[1]["outage"] is None
