"""Reading e-mail off the event loop, within a time budget: one child process, killed if late.

Why a process and not a thread (docs/hostile-mail.md): a thread cannot be
stopped, and CPython's regex engine holds the GIL for a whole match, so a
slow reading in a thread would still stall the event loop. The child
(``reader_child``) enforces the budget on its own CPU clock and answers
``too_slow``; should it not answer by a wall-clock deadline (``hard_deadline``:
four budgets plus a second, for a machine busy with other work), it is
killed and a fresh one is started for the next mail. The event loop only
ever awaits a pipe.

One reader reads one mail at a time; the daemon holds several
(``readers.ReaderPool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from datetime import datetime
from typing import Any, Protocol

import structlog

from otp_bot.errors import OtpBotError
from otp_bot.mail.extract import Evidence
from otp_bot.solve.reader_child import ANSWER, FRAME, READY, Reading

log = structlog.get_logger(__name__)

# A reading answer is a few hundred bytes; a link or subject cannot make it this long.
MAX_ANSWER_BYTES = 4 << 20
START_TIMEOUT = 30.0  # a cold start on a slow disk imports for a while
# The environment the child gets: enough to find Python and its packages, no secrets.
_ENV_KEEP = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT")


class TooSlow(Exception):
    """The reading ran out of budget; ``killed`` when the child had to be killed."""

    def __init__(self, killed: bool) -> None:
        super().__init__("over the mail CPU budget" + (" (reader killed)" if killed else ""))
        self.killed = killed


class Unreadable(Exception):
    """The reading failed inside the reader: ``error`` is the exception class (or how it died)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class ReaderDied(Exception):
    """The child's pipe broke or its answer made no sense."""


class ReaderUnavailable(OtpBotError):
    """The child process cannot be started: nothing to do with the mail, try it later."""


class MailReader(Protocol):
    async def read(self, raw: bytes, how: Reading, budget: float) -> Evidence: ...


class InProcessReader:
    """Reads on the calling thread, no budget: for tests of the solver and one-off tools."""

    async def read(self, raw: bytes, how: Reading, budget: float) -> Evidence:
        return how.read(raw)


def hard_deadline(budget: float) -> float:
    """Wall-clock seconds after which the child is killed."""
    return 4 * budget + 1.0


class ProcessReader:
    """The daemon's reader: ``read`` never blocks the loop; ``close`` when done."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.started = 0  # child processes started so far

    async def read(self, raw: bytes, how: Reading, budget: float) -> Evidence:
        """The evidence of ``raw``; raises TooSlow, Unreadable or ReaderUnavailable.

        A child that dies during the exchange may have died before (killed by
        someone, out of memory): the mail is given to a fresh child once more,
        and is unreadable only when that one dies too.
        """
        async with self._lock:
            for _attempt in range(2):
                try:
                    return _evidence_of(await self._ask(raw, how, budget))
                except ReaderDied:
                    continue
            raise Unreadable("ReaderDied")

    async def _ask(self, raw: bytes, how: Reading, budget: float) -> dict[str, Any]:
        proc = self._proc or await self._start()
        done = False
        try:
            # asyncio.timeout, not wait_for: no task of its own, so an answer is
            # taken up the turn of the loop it arrives in, not two turns later.
            async with asyncio.timeout(hard_deadline(budget)):
                reply = await _exchange(proc, raw, how, budget)
            done = True
        except TimeoutError:
            raise TooSlow(killed=True) from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, TypeError):
            raise ReaderDied from None
        finally:
            if not done:  # late, dead, or cancelled mid-exchange: never reuse the pipe
                await self._discard()
        return reply

    async def start(self) -> None:
        """Start the child now rather than at the first mail (raises ReaderUnavailable)."""
        async with self._lock:
            if self._proc is None:
                await self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return self._proc.pid if self._proc is not None else None

    async def close(self) -> None:
        async with self._lock:
            await self._discard()

    async def _start(self) -> asyncio.subprocess.Process:
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "otp_bot.solve.reader_child",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env=env, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise ReaderUnavailable(f"cannot start the mail reader: {exc}") from None
        self._proc = proc
        try:
            assert proc.stdout is not None  # noqa: S101 - PIPE above
            ready = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except (TimeoutError, ValueError):
            ready = b""
        if ready != READY:
            await self._discard()
            raise ReaderUnavailable("the mail reader did not start")
        self.started += 1
        log.debug("mail_reader_started", pid=proc.pid)
        return proc

    async def _discard(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()


async def _exchange(
    proc: asyncio.subprocess.Process, raw: bytes, how: Reading, budget: float
) -> dict[str, Any]:
    assert proc.stdin is not None  # noqa: S101 - PIPE
    assert proc.stdout is not None  # noqa: S101 - PIPE
    meta = json.dumps({**how.to_json(), "budget": budget}).encode()
    proc.stdin.write(FRAME.pack(len(meta), len(raw)) + meta + raw)
    await proc.stdin.drain()
    (size,) = ANSWER.unpack(await proc.stdout.readexactly(ANSWER.size))
    if size > MAX_ANSWER_BYTES:
        raise ValueError("answer too long")
    reply = json.loads(await proc.stdout.readexactly(size))
    if not isinstance(reply, dict):
        raise TypeError("answer is not an object")
    return reply


def _evidence_of(reply: dict[str, Any]) -> Evidence:
    if reply.get("too_slow"):
        raise TooSlow(killed=False)
    if "error" in reply:
        raise Unreadable(str(reply["error"])[:100])
    try:
        return _evidence_from(reply["evidence"])
    except (KeyError, TypeError, ValueError):  # our own child's answer; a guard, not a path
        raise Unreadable("ReaderAnswer") from None


def _evidence_from(found: dict[str, Any]) -> Evidence:
    reason = found["reason"]
    if isinstance(reason, str) and reason.startswith("extract_failed: "):
        raise Unreadable(reason.removeprefix("extract_failed: "))
    received = found["received_at"]
    return Evidence(
        dkim=found["dkim"],
        sender=found["sender"],
        trusted=bool(found["trusted"]),
        reason=reason,
        code=found["code"],
        link=found["link"],
        received_at=datetime.fromisoformat(received) if received else None,
        message_id=found["message_id"],
        subject=found["subject"],
    )
