"""The webhook outbox: an account's draft events, delivered at least once, in order.

The event table is the outbox: each transition's history line is written in
the transition's own transaction, so no event can be lost between a state
change and its delivery. ``Outbox.run`` reads the events after its cursor
(``event_cursor``, name ``webhook:<account>``), POSTs each one signed
(``webhook/``), and moves the cursor only after a 2xx: a crash or a kill
re-sends at most the event in flight (receivers drop it by its id). A failed
delivery is retried with backoff (1 s doubling to ``OTP_BOT_WEBHOOK_RETRY_MAX``,
with jitter) until it passes; later events wait behind it, so a receiver
sees each draft's changes in order. The first start with a webhook sends
only events from then on (not the whole history).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from otp_bot.store.events import EventStore
from otp_bot.webhook.sender import DeliveryFailed, WebhookClient
from otp_bot.webhook.sign import event_body

log = structlog.get_logger(__name__)

# The first retry of a failed delivery comes this soon; each next one twice as late.
FIRST_RETRY_S = 1.0


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """An event-table row as integrators see it (webhook body, ``GET /events`` data)."""
    at = row.get("at")
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "draft_id": row["draft_id"],
        "at": datetime.fromisoformat(at).isoformat() if isinstance(at, str) else at,
        "event": row["event"],
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "detail": row["detail"],
        "job_id": row.get("job_id"),
        "error": row.get("error"),
    }


class Outbox:
    """Delivers one account's events to its webhook until stopped."""

    def __init__(
        self,
        account_id: str,
        events: EventStore,
        client: WebhookClient,
        *,
        retry_max: float,
        on_attempt: Callable[[str], None] = lambda _result: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.account_id = account_id
        self.wake = asyncio.Event()  # set after every transition of the account
        self.delivered = 0
        self.failing_since: datetime | None = None  # the current event keeps failing
        self._events = events
        self._client = client
        self._retry_max = retry_max
        self._on_attempt = on_attempt  # "delivered" | "failed" (metrics)
        self._clock = clock
        self._cursor_name = f"webhook:{account_id}"
        self._log = log.bind(account_id=account_id)

    async def run(self, stop: asyncio.Event) -> None:
        cursor = self._events.cursor(self._cursor_name)
        if cursor is None:  # first start with a webhook: from now on, not the whole history
            cursor = self._events.last_event_id()
            self._events.set_cursor(self._cursor_name, cursor, self._clock())
        self._log.info("webhook_started", after_event=cursor)
        try:
            while not stop.is_set():
                self.wake.clear()
                batch = self._events.events_after(cursor, [self.account_id])
                if batch:
                    await self._events.durable()  # tell no one of a change not yet on disk
                for row in batch:
                    if not await self._deliver(event_json(row), stop):
                        return
                    cursor = row["id"]
                    self._events.set_cursor(self._cursor_name, cursor, self._clock())
                if not batch:
                    await _first(self.wake, stop)
        finally:
            await self._client.close()

    async def _deliver(self, event: dict[str, Any], stop: asyncio.Event) -> bool:
        """Deliver one event, retrying until it passes; False if stopped first."""
        body = event_body(event)
        delay = FIRST_RETRY_S
        attempt = 0
        while not stop.is_set():
            attempt += 1
            try:
                status = await self._client.deliver(event["id"], body)
            except DeliveryFailed as exc:
                self._on_attempt("failed")
                self.failing_since = self.failing_since or self._clock()
                wait = delay * (1 + random.random() / 4)  # noqa: S311 - jitter, not a secret
                self._log.warning(
                    "webhook_failed",
                    event_id=event["id"],
                    draft_id=event["draft_id"],
                    status=exc.status,
                    error=str(exc),
                    attempt=attempt,
                    retry_in=round(wait, 2),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                delay = min(delay * 2, self._retry_max)
                continue
            self._on_attempt("delivered")
            self.failing_since = None
            self.delivered += 1
            self._log.info(
                "webhook_delivered",
                event_id=event["id"],
                draft_id=event["draft_id"],
                to_state=event["to_state"],
                status=status,
                attempt=attempt,
            )
            return True
        return False


async def _first(wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Return once either event is set."""
    waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
