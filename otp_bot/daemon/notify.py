"""systemd's notify protocol (``sd_notify``), spoken directly: no dependency.

The daemon tells systemd ``READY=1`` once the mailbox is watched,
``WATCHDOG=1`` only when the mailbox loop has made real progress,
``STATUS=...`` with draft counts and ``STOPPING=1`` on the way out. Each
message is one datagram of ``KEY=value`` lines sent to ``$NOTIFY_SOCKET``
(a path, or an abstract socket when it starts with ``@``), through one
socket opened on first use and kept (one descriptor, whatever the number of
messages or accounts). Without ``$NOTIFY_SOCKET`` (not under systemd) every
call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends notify messages; failures are logged once and never raised."""

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address) if address else None
        self._warned = False
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; True when it was sent."""
        if self._address is None or not fields:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._warned:  # one line, not one per watchdog tick
                log.warning("notify_failed", error=f"{type(exc).__name__}: {exc}")
                self._warned = True
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def stopping(self) -> bool:
        return self.send(STOPPING="1", STATUS="stopping")


def watchdog_period(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of systemd's), or None when unset.

    ``$WATCHDOG_PID``, when set, must be this process: otherwise the watchdog
    belongs to a parent and is not ours to feed.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


def _socket_address(address: str) -> str:
    # "@name" is Linux's abstract namespace: a leading NUL byte on the wire.
    return "\0" + address[1:] if address.startswith("@") else address
