"""The mail reader's child process: reads e-mails sent by ``reader.MailReader``, one at a time.

    python -m otp_bot.solve.reader_child

Frames on stdin: ``>II`` (length of a JSON header, length of the raw mail),
the header ``{"ids": [...], "budget": seconds}``, the raw bytes. Each answer on
stdout is ``>I`` and a JSON object: ``{"evidence": {...}}`` (``Evidence.to_dict``),
``{"too_slow": true}`` or ``{"error": "<exception class>"}``. The child says
``READY`` once warmed up, and exits at end of input (the daemon closed the
pipe, or died).

The budget is CPU time, counted by a ``SIGPROF`` interval timer whose handler
raises ``TooSlow``: the regex engine checks for signals as it runs, so even a
regex that backtracks is stopped. A reading that never returns to Python
(a C call that does not check signals) is the parent's to stop: it kills
this process at a wall-clock deadline.
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from otp_bot.mail.extract import Evidence, extract

READY = b"READY\n"
FRAME = struct.Struct(">II")
ANSWER = struct.Struct(">I")
# Address space for this process: a runaway allocation becomes a MemoryError
# (an unreadable mail) instead of the host's OOM killer. Best effort: a
# seccomp filter that denies setrlimit (systemd's ~@resources) leaves it unset.
ADDRESS_SPACE = 1 << 30
_WARM_UP = (
    b"From: LinkedIn <security-noreply@linkedin.com>\r\nSubject: Your code 123456\r\n"
    b"Authentication-Results: mx; dkim=pass header.d=linkedin.com\r\n"
    b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<p>code</p><p>123456</p>&amp;"
)


@dataclass(frozen=True, slots=True)
class Reading:
    """How to read one mail: ``extract``'s checks, as plain values a pipe can carry."""

    trusted_ids: frozenset[str] = frozenset()
    server_results: bool = True  # the receiving server's Authentication-Results must vouch
    # DKIM key records fetched for this mail (lower-cased names); None: no own DKIM check.
    keys: Mapping[bytes, bytes | None] | None = None

    def read(self, raw: bytes) -> Evidence:
        keys = self.keys
        return extract(
            raw,
            trusted_authserv_ids=self.trusted_ids,
            server_results=self.server_results,
            dkim_keys=None if keys is None else (lambda name: keys.get(name.lower())),
        )

    def to_json(self) -> dict[str, Any]:
        keys = self.keys
        return {
            "ids": sorted(self.trusted_ids),
            "server_results": self.server_results,
            "keys": None if keys is None else [_pair(k, v) for k, v in keys.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reading:
        keys = data["keys"]
        return cls(
            frozenset(data["ids"]),
            bool(data["server_results"]),
            None if keys is None else {k.encode("latin-1"): _bytes(v) for k, v in keys},
        )


def _pair(name: bytes, record: bytes | None) -> list[str | None]:
    return [name.decode("latin-1"), None if record is None else record.decode("latin-1")]


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("latin-1")


class TooSlow(BaseException):
    """Raised by the CPU timer; a BaseException so that extract's own guard lets it by."""


def _too_slow(_signum: int, _frame: Any) -> None:
    raise TooSlow


def answer(raw: bytes, how: Reading, budget: float) -> dict[str, Any]:
    """Read one mail within ``budget`` CPU seconds."""
    try:
        signal.setitimer(signal.ITIMER_PROF, budget)
        try:
            evidence = how.read(raw)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except TooSlow:
        return {"too_slow": True}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the error class
        return {"error": type(exc).__name__}
    return {"evidence": evidence.to_dict()}


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer frames until end of input."""
    while (head := _read_exactly(stdin, FRAME.size)) is not None:
        meta_size, raw_size = FRAME.unpack(head)
        meta = _read_exactly(stdin, meta_size)
        raw = _read_exactly(stdin, raw_size)
        if meta is None or raw is None:
            return
        request = json.loads(meta)
        reply = answer(raw, Reading.from_json(request), float(request["budget"]))
        body = json.dumps(reply).encode()
        stdout.write(ANSWER.pack(len(body)) + body)
        stdout.flush()


def main() -> None:
    # Denied (seccomp) or already lower: the parent's deadline still holds.
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGPROF, _too_slow)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon's Ctrl-C is the daemon's
    extract(_WARM_UP)  # first-use imports (codecs, html) before the first deadline
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
