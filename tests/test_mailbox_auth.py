"""Connecting: TLS and STARTTLS verified against a throwaway CA, passwords, XOAUTH2."""

from __future__ import annotations

import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from otp_bot.errors import MailboxAuthError, MailboxError
from otp_bot.imap.probe import check_mailbox
from tests.dovecot import Dovecot
from tests.mailbox_helpers import Recorder, linkedin_message, running, settings_for, until


def _token_command(tmp_path: Path, tokens: list[str], stderr: str = "", status: int = 0) -> str:
    """A helper printing tokens[n] on its n-th run (the last one from then on)."""
    script, counter = tmp_path / "token.py", tmp_path / "runs"
    script.write_text(
        "import pathlib, sys\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "runs = int(counter.read_text()) if counter.exists() else 0\n"
        "counter.write_text(str(runs + 1))\n"
        f"tokens = {tokens!r}\n"
        "print(tokens[min(runs, len(tokens) - 1)])\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({status})\n"
    )
    return f"{sys.executable} {script}"


def _runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


async def test_tls_verified_against_ca(dovecot_tls: Dovecot, tmp_path: Path) -> None:
    """Implicit TLS to "localhost" works when the throwaway CA is configured."""
    assert dovecot_tls.certs is not None
    settings = settings_for(
        dovecot_tls,
        tmp_path,
        imap_host="localhost",
        imap_port=dovecot_tls.tls_port,
        imap_security="tls",
        imap_ca_file=dovecot_tls.certs.ca,
    )
    recorder = Recorder()
    async with running(settings, recorder):
        uid = dovecot_tls.append(linkedin_message())
        await recorder.wait_for(1)
    assert recorder.uids == [uid]


async def test_starttls_verified_against_ca(dovecot_tls: Dovecot, tmp_path: Path) -> None:
    """STARTTLS on the plain port works, certificate verified, IDLE wake-ups included."""
    assert dovecot_tls.certs is not None
    settings = settings_for(
        dovecot_tls, tmp_path, imap_security="starttls", imap_ca_file=dovecot_tls.certs.ca
    )
    report = await check_mailbox(settings)
    assert report.idle_supported
    recorder = Recorder()
    async with running(settings, recorder):
        uid = dovecot_tls.append(linkedin_message())
        await recorder.wait_for(1)
    assert recorder.uids == [uid]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_untrusted_certificate_refused(
    dovecot_tls: Dovecot, tmp_path: Path, security: str
) -> None:
    """Without the CA the certificate is refused: an error, never a login."""
    port = dovecot_tls.tls_port if security == "tls" else dovecot_tls.port
    settings = settings_for(dovecot_tls, tmp_path, imap_port=port, imap_security=security)
    with pytest.raises(MailboxError, match="TLS certificate is not trusted"):
        await check_mailbox(settings)
    assert "Login: user=" not in dovecot_tls.log_tail(200)


async def test_wrong_password_is_its_own_loud_state(dovecot: Dovecot, tmp_path: Path) -> None:
    """A refused login puts the watcher in auth_failed, retried only after the auth interval."""
    interval = 0.5
    settings = settings_for(
        dovecot, tmp_path, imap_password="wrong-password", imap_auth_retry_interval=interval
    )
    with pytest.raises(MailboxAuthError, match="AUTHENTICATIONFAILED"):
        await check_mailbox(settings)

    def failures() -> list[MutableMapping[str, Any]]:
        return [e for e in logs if e["event"] == "mailbox_auth_failed"]

    with capture_logs() as logs:
        async with running(settings, Recorder(), wait_watching=False) as watcher:
            await until(lambda: len(failures()) == 1)
            first = time.monotonic()
            assert watcher.state == "auth_failed"
            await until(lambda: len(failures()) == 2)
            # A lower bound only: a tight retry loop would come back at once.
            assert time.monotonic() - first >= interval * 0.9
    assert all(e["log_level"] == "error" for e in failures())
    assert "wrong-password" not in repr(logs)


async def test_xoauth2_login_with_token_command(tmp_path: Path) -> None:
    """XOAUTH2 with the command's token logs in (Dovecot checks it as the password)."""
    server = Dovecot(mechanisms="plain login xoauth2").start()
    try:
        command = _token_command(tmp_path, [server.password])
        settings = settings_for(
            server, tmp_path, imap_password=None, imap_oauth2_token_command=command
        )
        recorder = Recorder()
        with capture_logs() as logs:
            async with running(settings, recorder):
                uid = server.append(linkedin_message())
                await recorder.wait_for(1)
        assert recorder.uids == [uid]
        assert "method=XOAUTH2" in server.log_tail(200)
        assert server.password not in repr(logs)
    finally:
        server.cleanup()


async def test_xoauth2_refreshes_token_after_refusal(tmp_path: Path) -> None:
    """A refused (stale) token is replaced by a fresh one from the command at once."""
    server = Dovecot(mechanisms="plain login xoauth2").start()
    try:
        command = _token_command(tmp_path, ["stale-token", server.password])
        settings = settings_for(
            server, tmp_path, imap_password=None, imap_oauth2_token_command=command
        )
        report = await check_mailbox(settings)
        assert report.uidvalidity > 0
        assert _runs(tmp_path) == 2
    finally:
        server.cleanup()


async def test_xoauth2_refused_by_server_is_auth_failed(dovecot: Dovecot, tmp_path: Path) -> None:
    """A server without XOAUTH2 refuses the token: auth_failed, not a reconnect loop."""
    command = _token_command(tmp_path, ["some-token"])
    settings = settings_for(
        dovecot, tmp_path, imap_password=None, imap_oauth2_token_command=command
    )
    async with running(settings, Recorder(), wait_watching=False) as watcher:
        await until(lambda: watcher.state == "auth_failed")
    assert _runs(tmp_path) == 2  # the first token, then one refresh


async def test_failing_token_command_hides_stderr(dovecot: Dovecot, tmp_path: Path) -> None:
    """A token command that fails is an auth failure whose message omits its stderr."""
    command = _token_command(tmp_path, ["x"], stderr="refresh_token=SECRET-RT", status=3)
    settings = settings_for(
        dovecot, tmp_path, imap_password=None, imap_oauth2_token_command=command
    )
    with pytest.raises(MailboxAuthError, match="status 3") as caught:
        await check_mailbox(settings)
    assert "SECRET-RT" not in str(caught.value)


def test_token_refreshed_after_its_lifetime(tmp_path: Path) -> None:
    """A cached token is reused within its lifetime and fetched again after it."""
    from otp_bot.imap.auth import TokenSource

    command = _token_command(tmp_path, ["first-token", "second-token"])
    long_lived = TokenSource(command, lifetime=3600)
    assert long_lived.get() == long_lived.get() == "first-token"
    assert _runs(tmp_path) == 1
    expired = TokenSource(command, lifetime=1e-9)
    assert expired.get() == "second-token"
    assert expired.get() == "second-token"  # the helper's last token, fetched again
    assert _runs(tmp_path) == 3
