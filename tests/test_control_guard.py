"""The control API is never open: without OTP_BOT_CONTROL_TOKEN the daemon's own token
guards the drafts, and what a web page of another site could send is refused."""

from __future__ import annotations

import stat
from typing import Any

import aiohttp
import pytest

from otp_bot.control import token as control_token
from otp_bot.control.guard import foreign, host_allowed, split_host_header
from tests import dovecot as dc
from tests.inprocess import Running, running

pytestmark = pytest.mark.dovecot


async def raw(daemon: Running, method: str, path: str, headers: dict[str, str],
              data: bytes | None = None) -> tuple[int, Any]:  # fmt: skip
    """One request with exactly these headers (and the daemon's token)."""
    async with (
        aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as http,
        http.request(
            method, daemon.base_url + path, data=data, headers={**daemon.headers(), **headers}
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_own_token_created_0600_and_guards_drafts(dovecot: dc.Dovecot) -> None:
    """No OTP_BOT_CONTROL_TOKEN: a random token in <state dir>/control-token (0600) guards
    /drafts; /healthz and /metrics stay readable for probes and scrapers on this host."""
    async with running(dovecot) as daemon:
        state_dir = daemon.settings[0].state_dir
        path = state_dir / control_token.TOKEN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = control_token.read(state_dir)
        assert token is not None
        assert len(token) >= 40
        daemon.token = "not-the-token"
        for method, url in (("GET", "/drafts"), ("GET", "/drafts/x"), ("POST", "/drafts")):
            status, body = await daemon.request(method, url, {"draft_id": "d-g"})
            assert status == 401, (method, url)
            assert "bearer" in body["error"]
        for url in ("/healthz", "/metrics"):
            status, _ = await daemon.request("GET", url)
            assert status == 200, url
        daemon.token = token
        assert (await daemon.request("POST", "/drafts", {"draft_id": "d-g"}))[0] == 202


async def test_token_survives_a_restart(dovecot: dc.Dovecot) -> None:
    """The token is kept: a second start with the same state directory uses the same one."""
    async with running(dovecot) as daemon:
        first = control_token.read(daemon.settings[0].state_dir)
        second = control_token.ensure([daemon.settings[0].state_dir])
    assert first == second


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"Origin": "https://evil.example"}, "Origin"),
        ({"Origin": "null"}, "Origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site requests are refused"),
        ({"Sec-Fetch-Site": "same-site"}, "same-site requests are refused"),
        ({"Host": "evil.example:8787"}, "Host"),
        ({"Host": "rebound.example"}, "Host"),
    ],
)
async def test_cross_site_requests_refused(
    dovecot: dc.Dovecot, headers: dict[str, str], says: str
) -> None:
    """CSRF and DNS rebinding shapes get 403 on every endpoint, even with the right token."""
    async with running(dovecot) as daemon:
        for method, path in (("GET", "/drafts"), ("GET", "/metrics"), ("POST", "/drafts")):
            body = b'{"draft_id": "d-x"}' if method == "POST" else None
            extra = {"Content-Type": "application/json"} if body else {}
            status, answer = await raw(daemon, method, path, {**headers, **extra}, body)
            assert status == 403, (method, path)
            assert says in answer["error"]
        assert daemon.settings[0].account_id not in str(await daemon.request("GET", "/drafts"))


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])  # fmt: skip
async def test_post_needs_json_content_type(dovecot: dc.Dovecot, content_type: str | None) -> None:
    """A POST with a body not declared application/json (an HTML form's) gets 415."""
    async with running(dovecot) as daemon:
        headers = {"Content-Type": content_type} if content_type else {}
        status, answer = await raw(daemon, "POST", "/drafts", headers, b'{"draft_id": "d-f"}')
        assert status == 415
        assert "application/json" in answer["error"]
        status, drafts = await daemon.request("GET", "/drafts")
        assert (status, drafts) == (200, [])


async def test_same_origin_json_from_this_host_accepted(dovecot: dc.Dovecot) -> None:
    """The CLI's shape (Host localhost:PORT, JSON, no Origin) and Sec-Fetch-Site: none pass."""
    async with running(dovecot) as daemon:
        port = daemon.settings[0].control_addr.rsplit(":", 1)[1]
        headers = {
            "Host": f"localhost:{port}",
            "Content-Type": "application/json; charset=utf-8",
            "Sec-Fetch-Site": "none",
        }
        status, _ = await raw(daemon, "POST", "/drafts", headers, b'{"draft_id": "d-ok"}')
        assert status == 202


def test_explicit_token_skips_the_host_rules() -> None:
    """The header rules alone: Host by name and port, bracketed IPv6, junk never raises."""
    assert host_allowed("127.0.0.1:8787", "127.0.0.1", 8787)
    assert host_allowed("LOCALHOST:8787", "127.0.0.1", 8787)
    assert host_allowed("[::1]:8787", "::1", 8787)
    assert host_allowed("localhost", "127.0.0.1", 8787)
    assert host_allowed("localhost:9000", "127.0.0.1", 8787)  # a forwarded port
    assert not host_allowed("[::1]:8787", "127.0.0.1", 8787)
    assert not host_allowed("", "127.0.0.1", 8787)
    assert not host_allowed("localhost.evil.example:8787", "127.0.0.1", 8787)
    for junk in ("[", "]:", "a:b:c", ":", "[::1]x", "x:99999999999", "\x00"):
        split_host_header(junk)
        assert not host_allowed(junk, "127.0.0.1", 8787)
    assert foreign({"Host": "127.0.0.1:1"}, "127.0.0.1", 1) is None
