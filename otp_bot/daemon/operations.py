"""One account's operator controls and background duties.

``Operations`` is built with the account's settings, its worker (which owns
the drafts, their store and the held-account probe) and a hook that counts
webhook deliveries. Controls (the control API's operator endpoints call them,
``control/operator.py``; each answers only once its transitions are on disk):
read a draft, find drafts by state and time, cancel one, queue the failed ones
again, probe a held account now. Duties (tasks that run beside the mailbox and
the worker): the webhook outbox, when ``OTP_BOT_WEBHOOK_URL`` is set, and the
daily retention of finished drafts (``OTP_BOT_RETENTION_DAYS``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import structlog

from otp_bot.config import Settings
from otp_bot.daemon.outbox import Outbox
from otp_bot.solve.drafts import TERMINAL
from otp_bot.solve.worker import AccountWorker
from otp_bot.store.events import EventStore
from otp_bot.webhook.sender import WebhookClient

log = structlog.get_logger(__name__)

JsonDict = dict[str, Any]
Duty = tuple[str, Coroutine[Any, Any, None]]  # a task's name, what it runs
# Finished drafts are pruned at start, then this often.
PRUNE_EVERY = timedelta(days=1)


class Operations:
    """The operator controls and background duties of one account's worker."""

    def __init__(
        self,
        settings: Settings,
        worker: AccountWorker,
        *,
        on_webhook: Callable[[str], None] = lambda _result: None,
    ) -> None:
        """``on_webhook``: called with each delivery's result, "delivered" or "failed"."""
        self.account_id = settings.account_id
        self._worker = worker
        self._keep = timedelta(days=settings.retention_days)
        self.events = EventStore(worker.store)  # the drafts' history (outbox, GET /events)
        self.outbox = _outbox(settings, self.events, on_webhook)

    def changed(self) -> None:
        """A draft moved: the outbox (if any) has an event to deliver."""
        if self.outbox is not None:
            self.outbox.wake.set()

    def duties(self, stop: asyncio.Event) -> list[Duty]:
        """The account's background tasks besides the mailbox and the worker."""
        duties: list[Duty] = [("retention", self._prune(stop))]
        if self.outbox is not None:
            duties.append(("webhook", self.outbox.run(stop)))
        return duties

    # --- controls ----------------------------------------------------------------

    def draft(self, draft_id: str) -> JsonDict | None:
        draft = self._worker.draft(draft_id)
        return draft.to_dict() if draft is not None else None

    def find_drafts(self, states: set[str] | None, since: datetime | None) -> list[JsonDict]:
        return [draft.to_dict() for draft in self._worker.find(states, since)]

    async def cancel(self, draft_id: str) -> JsonDict | None:
        """The draft after the cancel (``"cancel"``: cancelled | pending | finished)."""
        worker = self._worker
        before = worker.draft(draft_id)
        if before is None:
            return None
        if before.state in TERMINAL:
            return {**before.to_dict(), "cancel": "finished"}
        draft = worker.cancel(draft_id) or before
        await worker.store.durable()
        outcome = "pending" if worker.cancel_pending(draft_id) else "cancelled"
        return {**draft.to_dict(), "cancel": outcome}

    async def retry_failed(self, error: str | None) -> list[JsonDict]:
        retried = self._worker.retry_failed(error)
        await self._worker.store.durable()
        if retried:
            log.info("drafts_retried", account_id=self.account_id, count=len(retried), error=error)
        return [draft.to_dict() for draft in retried]

    async def resume(self) -> JsonDict:
        """Probe the account now if it is held; say what the probe found."""
        worker = self._worker
        found = await worker.probe()
        await worker.store.durable()
        hold = worker.hold
        return {
            "account_id": self.account_id,
            "probe": found.value if found is not None else None,
            "held": hold.to_dict(worker.clock()) if hold is not None else None,
        }

    # --- duties ------------------------------------------------------------------

    async def _prune(self, stop: asyncio.Event) -> None:
        """Drop finished drafts (and their events) past the retention, at start and daily."""
        finished = {state.value for state in TERMINAL}
        while not stop.is_set():
            before = self._worker.clock() - self._keep
            drafts, events = self.events.prune(self.account_id, finished, before)
            if drafts:
                self._worker.recount()
            if drafts or events:
                log.info(
                    "drafts_pruned",
                    account_id=self.account_id,
                    drafts=drafts,
                    events=events,
                    before=before.isoformat(),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PRUNE_EVERY.total_seconds())


def _outbox(
    settings: Settings, events: EventStore, on_attempt: Callable[[str], None]
) -> Outbox | None:
    """The webhook outbox of these settings, or None when no webhook is set."""
    url, secret = settings.webhook_url, settings.webhook_secret
    if url is None or secret is None:
        return None
    client = WebhookClient(str(url), secret.get_secret_value(), timeout=settings.webhook_timeout)
    return Outbox(
        settings.account_id,
        events,
        client,
        retry_max=settings.webhook_retry_max,
        on_attempt=on_attempt,
    )
