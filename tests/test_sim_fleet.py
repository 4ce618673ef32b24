"""The multi-account simulator: one server, each request routed to its account by API key."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from otp_bot.postpress.client import PostpressClient, RetryPolicy, SharedSessions
from otp_bot.postpress.wire import Checkpoint
from otp_bot.sim.app import Simulator
from otp_bot.sim.fleet import Fleet, Handler
from tests.dovecot import Dovecot
from tests.test_simulator import simulate_process

ACCOUNTS = [(f"acc_{i}", f"pp_key_{i}") for i in range(3)]


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[Fleet, TestClient[Any, Any]]]:
    """Three simulated accounts (no mailbox) behind one server."""
    sims = [Simulator(api_key=key, account_id=account) for account, key in ACCOUNTS]
    served = Fleet(sims)
    async with TestClient(TestServer(served.app, host="127.0.0.1")) as client:
        yield served, client


async def publish(client: TestClient[Any, Any], account: str, key: str, draft: str) -> Any:
    response = await client.post(
        f"/v1/linkedin/jobs/{draft}/publish",
        json={"account_id": account},
        headers={"X-API-KEY": key},
    )
    return response.status, await response.json()


async def test_requests_reach_their_accounts(fleet: tuple[Fleet, TestClient[Any, Any]]) -> None:
    """Each API key reaches its own account; drafts of the same id stay apart; a bad key is 401."""
    served, client = fleet
    for account, key in ACCOUNTS:
        assert (await publish(client, account, key, "job-1"))[0] == 200
    status, body = await publish(client, "acc_0", "pp_key_nope", "job-2")
    assert (status, body["type"]) == (401, "errors/invalid_credentials")
    wrong_account = await publish(client, "acc_0", "pp_key_1", "job-3")
    assert wrong_account[0] == 404  # acc_1's key does not publish for acc_0
    counts = [len(sim.requests) for sim in served.simulators]
    assert counts == [2, 2, 1]
    assert all(sim.draft("job-1")["pending"] == "OTP" for sim in served.simulators)


async def test_admin_per_account_and_across(fleet: tuple[Fleet, TestClient[Any, Any]]) -> None:
    """/_sim/accounts/{id}/... is one account's admin API; /_sim/requests lists them all."""
    _served, client = fleet
    scripted = await client.post(
        "/_sim/accounts/acc_2/script",
        json={"draft_id": "job-5", "script": {"checkpoints": [], "job_state": "paused"}},
    )
    assert scripted.status == 200
    assert (await publish(client, "acc_2", "pp_key_2", "job-5"))[1]["job_state"] == "paused"
    assert (await publish(client, "acc_1", "pp_key_1", "job-5"))[1]["type"] == "OTP"
    own = await (await client.get("/_sim/accounts/acc_1/requests")).json()
    assert [r["draft_id"] for r in own] == ["job-5"]
    every = await (await client.get("/_sim/requests")).json()
    assert sorted(r["account_id"] for r in every) == ["acc_1", "acc_2"]
    assert (await client.post("/_sim/script", json={"draft_id": "x"})).status == 404
    assert (await client.get("/_sim/accounts/acc_9/requests")).status == 404


def test_keys_and_ids_must_differ() -> None:
    """Two accounts with one API key cannot be told apart: refused."""
    with pytest.raises(ValueError, match="API key"):
        Fleet([Simulator(api_key="k", account_id="a"), Simulator(api_key="k", account_id="b")])


@pytest.fixture
def two_users() -> Iterator[Dovecot]:
    """A Dovecot with two mailbox users."""
    server = Dovecot(users=("bot@example.test", "second@example.test")).start()
    try:
        yield server
    finally:
        server.cleanup()


async def test_cli_simulate_many_accounts(tmp_path: Path, two_users: Dovecot) -> None:
    """`otp-bot simulate` with two env files mails each account's own mailbox user."""
    dovecot, users = two_users, two_users.users
    envs = []
    for i, user in enumerate(users):
        env = tmp_path / f"a{i}.env"
        env.write_text(
            f"OTP_BOT_ACCOUNT_ID=acc_{i}\nOTP_BOT_API_KEY=pp_key_{i}\n"
            f"OTP_BOT_IMAP_HOST={dovecot.host}\nOTP_BOT_IMAP_PORT={dovecot.port}\n"
            f"OTP_BOT_IMAP_USER={user}\nOTP_BOT_IMAP_PASSWORD={dovecot.password}\n"
            "OTP_BOT_IMAP_SECURITY=none\nOTP_BOT_LOG_FORMAT=json\n"
        )
        envs += ["--env-file", str(env)]
    async with simulate_process(*envs) as (base_url, proc):
        for i in range(2):
            retry = RetryPolicy(attempts=1, max_time=10, wait=False)
            async with PostpressClient(
                base_url=base_url, api_key=f"pp_key_{i}", account_id=f"acc_{i}", retry=retry
            ) as api:
                assert isinstance(await api.publish(f"job-{i}"), Checkpoint)
        async with ClientSession() as session:
            admin = base_url.removesuffix("/v1")
            waited = await (await session.post(f"{admin}/_sim/wait-for-mail")).json()
            mails = await (await session.get(f"{admin}/_sim/mails")).json()
        assert waited == {"sent": 2, "errors": []}
        assert sorted((m["account_id"], m["draft_id"]) for m in mails) == [
            ("acc_0", "job-0"),
            ("acc_1", "job-1"),
        ]
        assert [len(dovecot.uids(user=user)) for user in users] == [1, 1]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_accounts_share_one_connection_pool() -> None:
    """Clients of several accounts with SharedSessions reuse one pool: one TCP connection
    carries every sequential request, and each request keeps its own account's key."""
    sims = [Simulator(api_key=key, account_id=account) for account, key in ACCOUNTS]
    served = Fleet(sims)
    peers: set[object] = set()

    @web.middleware
    async def note_peer(request: web.Request, handler: Handler) -> web.StreamResponse:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return await handler(request)

    served.app.middlewares.append(note_peer)
    sessions = SharedSessions()
    retry = RetryPolicy(attempts=1, max_time=10, wait=False)
    async with TestServer(served.app, host="127.0.0.1") as server:
        base = str(server.make_url("/v1"))
        for account, key in ACCOUNTS * 2:
            client = PostpressClient(
                base_url=base, api_key=key, account_id=account, retry=retry, sessions=sessions
            )
            assert isinstance(await client.publish(f"job-{len(peers)}-x"), Checkpoint)
            await client.close()  # the shared pool outlives each client
    await sessions.close()
    assert len(peers) == 1
    assert [len(sim.requests) for sim in sims] == [2, 2, 2]
    assert all(r.authorized for sim in sims for r in sim.requests)
