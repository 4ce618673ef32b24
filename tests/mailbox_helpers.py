"""Helpers for the mailbox tests: settings for a test Dovecot, a recording handler."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from otp_bot.config import Settings
from otp_bot.imap.watcher import IncomingMail, MailboxWatcher, WatcherLinks
from otp_bot.store.db import Store
from tests.dovecot import Dovecot

# Generous bound for "the bot saw it": Dovecot notifies after ~0.5 s.
DELIVERY_TIMEOUT = 20.0


def settings_for(server: Dovecot | Any, state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "account_id": "acct-test",
        "api_key": "test-api-key",
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_user": server.user,
        "imap_password": server.password,
        "imap_security": "none",
        "imap_timeout": 10,  # generous: other suites may load this machine
        "imap_backoff_max": 2,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return Settings(**values)


def linkedin_message(subject: str = "Your code", message_id: str | None = None) -> bytes:
    message_id = message_id or f"<{uuid.uuid4().hex}@linkedin.com>"
    return (
        "From: LinkedIn <security-noreply@linkedin.com>\r\nTo: bot@example.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
        "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n"
        "Your verification code is 123456.\r\n"
    ).encode()


class Recorder:
    """A mail handler that remembers what it got and lets tests wait for it."""

    def __init__(self, fail: Callable[[IncomingMail], bool] | None = None) -> None:
        self.mails: list[IncomingMail] = []
        self.calls = 0
        self._fail = fail
        self._changed = asyncio.Condition()

    async def __call__(self, mail: IncomingMail) -> None:
        async with self._changed:
            self.calls += 1
            self._changed.notify_all()
            if self._fail is not None and self._fail(mail):
                raise RuntimeError(f"handler refuses uid {mail.uid}")
            self.mails.append(mail)

    @property
    def uids(self) -> list[int]:
        return [mail.uid for mail in self.mails]

    async def wait_for(self, count: int) -> None:
        """Until ``count`` mails were recorded (DELIVERY_TIMEOUT at most)."""
        async with asyncio.timeout(DELIVERY_TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: len(self.mails) >= count)

    async def wait_calls(self, count: int) -> None:
        async with asyncio.timeout(DELIVERY_TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: self.calls >= count)


@asynccontextmanager
async def running(
    settings: Settings,
    recorder: Recorder,
    *,
    wait_watching: bool = True,
    links: WatcherLinks | None = None,
) -> AsyncIterator[MailboxWatcher]:
    """A watcher running in a task; stopped (and checked to stop) on exit."""
    store = Store(settings.state_db)
    watcher = MailboxWatcher(settings, store, recorder, links=links)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        if wait_watching:
            await asyncio.wait_for(watcher.watching.wait(), DELIVERY_TIMEOUT)
        yield watcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        store.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on the watcher's public state (it has no event per state)."""
    async with asyncio.timeout(DELIVERY_TIMEOUT):
        while not condition():  # noqa: ASYNC110 - states have no event; polled, bounded
            await asyncio.sleep(0.02)


class Blackhole:
    """A TCP relay to a server that can go silent on its open connections.

    ``freeze()`` makes every connection open at that moment swallow all data
    in both directions without closing: the bot sees a half-open socket, as
    after a NAT timeout or a pulled cable. Later connections relay normally.
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._frozen: list[threading.Event] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        for flag in self._frozen:
            flag.set()

    def close(self) -> None:
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            frozen = threading.Event()
            self.connections += 1
            self._frozen.append(frozen)
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_relay, args=(src, dst, frozen), daemon=True).start()


def _relay(src: socket.socket, dst: socket.socket, frozen: threading.Event) -> None:
    try:
        while data := src.recv(65536):
            if not frozen.is_set():
                dst.sendall(data)
    except OSError:
        pass
    finally:
        if not frozen.is_set():
            dst.close()
