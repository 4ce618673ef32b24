"""The worker's loop: take a step, idle as long as it says (or until woken), until stopped.

A step returns how long to idle before the next one (0: at once; ``inf``:
until woken); ``wake`` cuts the idle short (new mail, a new draft, a
cancel). After each step that ended well, ``after_step`` runs (the cancels
that waited for its API call). A step that raises is logged
(``worker_step_failed``) and the next one comes ``STEP_RETRY_S`` seconds
later, twice as late each time up to ``STEP_RETRY_MAX_S``: one bad step
never ends an account's worker. ``stop`` ends the loop once the step under
way is done; ``abort`` also cancels that step (only an API call can be
pending, safe to re-send under its stored key).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# After an unexpected failure of a step (the database unwritable, a bug) the
# worker tries again after this long, doubling up to the maximum.
STEP_RETRY_S = 1.0
STEP_RETRY_MAX_S = 60.0


class StepLoop:
    """Runs ``step`` over and over for one account (see the module docstring)."""

    def __init__(
        self,
        account_id: str,
        step: Callable[[], Coroutine[Any, Any, float]],
        after_step: Callable[[], None],
        wake: asyncio.Event,
    ) -> None:
        self._step = step
        self._after_step = after_step
        self._wake = wake  # set when there may be something to do
        self._log = log.bind(account_id=account_id)

    async def run(self, stop: asyncio.Event, abort: asyncio.Event | None = None) -> None:
        """Step until ``stop`` is set; ``abort`` (default: ``stop``) cancels a step under way."""
        stopping = asyncio.create_task(stop.wait())
        aborting = asyncio.create_task(abort.wait()) if abort is not None else stopping
        try:
            await self._loop(stop, stopping, aborting)
        finally:
            stopping.cancel()
            aborting.cancel()

    async def _loop(
        self, stop: asyncio.Event, stopping: asyncio.Task[Any], aborting: asyncio.Task[Any]
    ) -> None:
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            step = asyncio.create_task(self._step())
            try:
                await asyncio.wait({step, aborting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not step.done():
                    step.cancel()  # only an API call can be pending: safe to re-send
                    with contextlib.suppress(asyncio.CancelledError):
                        await step
            if stop.is_set() or aborting.done():
                return
            try:
                idle = step.result()
                failures = 0
                self._after_step()
            except Exception:  # noqa: BLE001 - one bad step must not end the account's worker
                failures += 1
                idle = min(STEP_RETRY_S * 2 ** (failures - 1), STEP_RETRY_MAX_S)
                self._log.exception("worker_step_failed", retry_in=idle)
            if idle > 0:
                await self._idle(idle, stopping)

    async def _idle(self, seconds: float, stopping: asyncio.Task[Any]) -> None:
        waking = asyncio.create_task(self._wake.wait())
        try:
            timeout = None if math.isinf(seconds) else seconds
            await asyncio.wait(
                {waking, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waking.cancel()
