"""`otp-bot oauth2-token`: the XOAUTH2 token command for Gmail and Microsoft 365.

A token endpoint on loopback (an aiohttp app speaking RFC 6749's token
grant) stands in for Google's and Microsoft's; the command runs as a real
process, and once as the token command of a mailbox that Dovecot checks.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.dovecot import Dovecot
from tests.mailbox_helpers import Recorder, linkedin_message, running, settings_for


@dataclass
class TokenEndpoint:
    """Answers refresh-token and client-credentials grants; records every form."""

    access_token: str = "ya29.access-token-1"
    rotate_to: str | None = None
    refuse: bool = False
    forms: list[dict[str, str]] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.forms.append(form)
        if self.refuse:
            return web.json_response(
                {"error": "invalid_grant", "error_description": f"bad {form.get('refresh_token')}"},
                status=400,
            )
        answer = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": 3599}
        if self.rotate_to:
            answer["refresh_token"] = self.rotate_to
        return web.json_response(answer)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[TokenEndpoint, str]]:
    state = TokenEndpoint()
    app = web.Application()
    app.router.add_post("/token", state.token)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield state, str(server.make_url("/token"))
    finally:
        await server.close()


def argv(url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "otp_bot", "oauth2-token", "--token-url", url, *extra]


def m365(url: str, refresh: Path, *extra: str) -> list[str]:
    """The command for Microsoft 365 with a refresh token in the file ``refresh``."""
    return argv(
        url,
        "--provider",
        "microsoft",
        "--client-id",
        "app-1",
        "--refresh-token-file",
        str(refresh),
        *extra,
    )


async def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    return path


async def test_refresh_token_grant_prints_the_access_token(
    endpoint: tuple[TokenEndpoint, str], tmp_path: Path
) -> None:
    """Microsoft: the refresh grant with the IMAP scope; only the token on stdout."""
    state, url = endpoint
    refresh = secret(tmp_path, "rt", "M.refresh-1")
    code, out, err = await run(m365(url, refresh))
    assert (code, out, err) == (0, "ya29.access-token-1\n", "")
    (form,) = state.forms
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "M.refresh-1"
    assert form["client_id"] == "app-1"
    assert "IMAP.AccessAsUser.All" in form["scope"]
    assert "client_secret" not in form


async def test_secret_files_come_from_the_credentials_directory(
    endpoint: tuple[TokenEndpoint, str], tmp_path: Path
) -> None:
    """Google: relative file names are read in $CREDENTIALS_DIRECTORY; Gmail's scope."""
    state, url = endpoint
    secret(tmp_path, "google-secret", "GOCSPX-secret")
    secret(tmp_path, "google-refresh", "1//refresh")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "PATH": "/usr/bin:/bin"}
    args = ["--provider", "google", "--client-id", "id.apps.googleusercontent.com"]
    args += ["--client-secret-file", "google-secret", "--refresh-token-file", "google-refresh"]
    code, out, _ = await run(argv(url, *args), env)
    assert code == 0
    assert out.strip() == "ya29.access-token-1"
    (form,) = state.forms
    assert form["client_secret"] == "GOCSPX-secret"
    assert form["refresh_token"] == "1//refresh"
    assert form["scope"] == "https://mail.google.com/"


async def test_rotated_refresh_token_is_cached_and_used_next(
    endpoint: tuple[TokenEndpoint, str], tmp_path: Path
) -> None:
    """A rotated refresh token lands in --cache (0600) and is sent on the next run."""
    state, url = endpoint
    state.rotate_to = "M.refresh-2"
    refresh, cache = secret(tmp_path, "rt", "M.refresh-1"), tmp_path / "cache"
    args = argv(
        url, "--provider", "microsoft", "--client-id", "a", "--refresh-token-file", str(refresh)
    )
    args += ["--cache", str(cache)]
    assert (await run(args))[0] == 0
    assert cache.read_text() == "M.refresh-2"
    assert cache.stat().st_mode & 0o777 == 0o600
    assert (await run(args))[0] == 0
    assert [f["refresh_token"] for f in state.forms] == ["M.refresh-1", "M.refresh-2"]


async def test_client_credentials_grant(
    endpoint: tuple[TokenEndpoint, str], tmp_path: Path
) -> None:
    """Microsoft app-only access: client credentials and the .default scope, no refresh token."""
    state, url = endpoint
    client_secret = secret(tmp_path, "cs", "app-secret")
    args = ["--provider", "microsoft", "--client-id", "a", "--client-credentials"]
    code, _, _ = await run(argv(url, *args, "--client-secret-file", str(client_secret)))
    assert code == 0
    (form,) = state.forms
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "https://outlook.office365.com/.default"
    assert "refresh_token" not in form


async def test_refusal_names_the_error_code_never_a_secret(
    endpoint: tuple[TokenEndpoint, str], tmp_path: Path
) -> None:
    """A refused grant exits 1 with the OAuth error code; no token, nothing on stdout."""
    state, url = endpoint
    state.refuse = True
    refresh = secret(tmp_path, "rt", "M.secret-refresh")
    code, out, err = await run(
        argv(
            url, "--provider", "microsoft", "--client-id", "a", "--refresh-token-file", str(refresh)
        )
    )
    assert code == 1
    assert out == ""
    assert "HTTP 400: invalid_grant" in err
    assert "M.secret-refresh" not in err


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://login.example.com/token", "must be https"),
        ("ftp://127.0.0.1/token", "must be https"),
    ],
)
async def test_unsafe_token_url_refused(url: str, problem: str, tmp_path: Path) -> None:
    """Plain http only to loopback; nothing is sent elsewhere."""
    refresh = secret(tmp_path, "rt", "r")
    code, _, err = await run(
        argv(url, "--provider", "google", "--client-id", "a", "--refresh-token-file", str(refresh))
    )
    assert code == 1
    assert problem in err


async def test_missing_or_empty_secret_file(tmp_path: Path) -> None:
    """A missing or empty secret file is named; nothing is requested."""
    empty = secret(tmp_path, "empty", "")
    for path, words in ((tmp_path / "absent", "cannot read"), (empty, "is empty")):
        code, _, err = await run(
            argv(
                "https://unused.example/token",
                *("--provider", "google", "--client-id", "a", "--refresh-token-file", str(path)),
            )
        )
        assert code == 1
        assert words in err


@pytest.mark.dovecot
async def test_mailbox_logs_in_with_the_command_as_token_command(
    endpoint: tuple[TokenEndpoint, str], tmp_path: Path
) -> None:
    """The mailbox's XOAUTH2 login uses the token this command fetched (Dovecot checks it)."""
    state, url = endpoint
    server = Dovecot(mechanisms="plain login xoauth2").start()
    try:
        state.access_token = server.password
        refresh = secret(tmp_path, "rt", "M.refresh-1")
        command = " ".join(
            argv(
                url,
                "--provider",
                "microsoft",
                "--client-id",
                "a",
                "--refresh-token-file",
                str(refresh),
            )
        )
        settings = settings_for(
            server, tmp_path, imap_password=None, imap_oauth2_token_command=command
        )
        recorder = Recorder()
        async with running(settings, recorder):
            uid = server.append(linkedin_message())
            await recorder.wait_for(1)
        assert recorder.uids == [uid]
        assert "method=XOAUTH2" in server.log_tail(200)
        assert state.forms
    finally:
        server.cleanup()
