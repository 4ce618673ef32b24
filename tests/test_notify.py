"""sd_notify over a real unix datagram socket."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from otp_bot.daemon.notify import Notifier, watchdog_period


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket on a short filesystem path (as systemd's)."""
    directory = Path(tempfile.mkdtemp(prefix="nt-", dir="/tmp"))
    path = str(directory / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        directory.rmdir()


def test_ready_sends_one_datagram_with_status(receiver: tuple[socket.socket, str]) -> None:
    """READY=1 and STATUS= travel together in one datagram."""
    sock, path = receiver
    notifier = Notifier(path)
    assert notifier.ready("watching; 0 awaiting_code")
    notifier.close()
    assert sock.recv(4096) == b"READY=1\nSTATUS=watching; 0 awaiting_code"


def test_watchdog_and_stopping(receiver: tuple[socket.socket, str]) -> None:
    """WATCHDOG=1 and STOPPING=1 are sent as systemd expects them."""
    sock, path = receiver
    notifier = Notifier(path)
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_abstract_socket_address() -> None:
    """An address starting with '@' is an abstract socket (leading NUL)."""
    name = f"otp-bot-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier("@" + name)
        assert notifier.status("hello")
        notifier.close()
        assert sock.recv(4096) == b"STATUS=hello"


def test_without_notify_socket_nothing_is_sent() -> None:
    """Outside systemd (no $NOTIFY_SOCKET) every call is a no-op."""
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready("x")


def test_missing_socket_is_not_an_error(tmp_path: Path) -> None:
    """A vanished socket is logged, not raised: the daemon keeps running."""
    notifier = Notifier(str(tmp_path / "gone"))
    assert not notifier.watchdog()
    notifier.close()


def test_watchdog_period_is_half_of_systemds() -> None:
    """WATCHDOG_USEC=10 s gives a 5 s ping period; a foreign WATCHDOG_PID disables it."""
    assert watchdog_period({"WATCHDOG_USEC": "10000000"}) == 5.0
    own = str(os.getpid())
    assert watchdog_period({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": own}) == 5.0
    assert watchdog_period({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_period({}) is None
    assert watchdog_period({"WATCHDOG_USEC": "0"}) is None


def test_one_socket_for_every_message(receiver: tuple[socket.socket, str]) -> None:
    """Many messages go through one kept socket: the process's descriptors do not grow."""
    sock, path = receiver
    notifier = Notifier(path)
    notifier.status("first")
    assert sock.recv(4096) == b"STATUS=first"
    before = len(os.listdir("/proc/self/fd"))
    for i in range(200):
        assert notifier.status(f"n={i}")
        assert sock.recv(4096) == f"STATUS=n={i}".encode()
    assert len(os.listdir("/proc/self/fd")) == before
    notifier.close()
    assert len(os.listdir("/proc/self/fd")) == before - 1
