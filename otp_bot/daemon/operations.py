"""An account's operator controls and background duties, mixed into ``Account``.

Controls (the control API calls them; each answers only once its transitions
are on disk): find drafts by state and time, cancel one, queue the failed ones
again, probe a held account now. Duties (tasks beside the mailbox and the
worker): the webhook outbox, when ``OTP_BOT_WEBHOOK_URL`` is set, and the
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
from otp_bot.daemon.metrics import Metrics
from otp_bot.daemon.outbox import Outbox
from otp_bot.solve.drafts import TERMINAL
from otp_bot.solve.worker import AccountWorker
from otp_bot.store.events import EventStore
from otp_bot.webhook.sender import WebhookClient

log = structlog.get_logger(__name__)

JsonDict = dict[str, Any]
# Finished drafts are pruned at start, then this often.
PRUNE_EVERY = timedelta(days=1)


class Operations:
    """The controls and duties of one account (``Account`` provides the attributes)."""

    settings: Settings
    metrics: Metrics
    worker: AccountWorker
    outbox: Outbox | None
    listeners: list[Callable[[], None]]  # called after every transition (SSE, outbox)

    @property
    def account_id(self) -> str:
        return self.settings.account_id

    def _start_operations(self) -> None:
        """Build the outbox (if a webhook is set); call once the worker exists."""
        self.listeners = []
        self.outbox = None
        self.events = EventStore(self.worker.store)
        url, secret = self.settings.webhook_url, self.settings.webhook_secret
        if url is not None and secret is not None:
            client = WebhookClient(
                str(url), secret.get_secret_value(), timeout=self.settings.webhook_timeout
            )
            self.outbox = Outbox(
                self.account_id,
                self.events,
                client,
                retry_max=self.settings.webhook_retry_max,
                on_attempt=lambda result: self.metrics.webhook(self.account_id, result),
            )
            self.listeners.append(self.outbox.wake.set)

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def duties(self, stop: asyncio.Event) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """The account's background tasks besides the mailbox and the worker."""
        duties: list[tuple[str, Coroutine[Any, Any, None]]] = [("retention", self._prune(stop))]
        if self.outbox is not None:
            duties.append(("webhook", self.outbox.run(stop)))
        return duties

    # --- controls ----------------------------------------------------------------

    def find_drafts(self, states: set[str] | None, since: datetime | None) -> list[JsonDict]:
        return [draft.to_dict() for draft in self.worker.find(states, since)]

    async def cancel(self, draft_id: str) -> JsonDict | None:
        """The draft after the cancel (``"cancel"``: cancelled | pending | finished)."""
        before = self.worker.draft(draft_id)
        if before is None:
            return None
        if before.state in TERMINAL:
            return {**before.to_dict(), "cancel": "finished"}
        draft = self.worker.cancel(draft_id) or before
        await self.worker.store.durable()
        outcome = "pending" if self.worker.cancel_pending(draft_id) else "cancelled"
        return {**draft.to_dict(), "cancel": outcome}

    async def retry_failed(self, error: str | None) -> list[JsonDict]:
        retried = self.worker.retry_failed(error)
        await self.worker.store.durable()
        if retried:
            log.info("drafts_retried", account_id=self.account_id, count=len(retried), error=error)
        return [draft.to_dict() for draft in retried]

    async def resume(self) -> JsonDict:
        """Probe the account now if it is held; say what the probe found."""
        found = await self.worker.probe()
        await self.worker.store.durable()
        hold = self.worker.hold
        return {
            "account_id": self.account_id,
            "probe": found.value if found is not None else None,
            "held": hold.to_dict(self.worker.clock()) if hold is not None else None,
        }

    # --- duties ------------------------------------------------------------------

    async def _prune(self, stop: asyncio.Event) -> None:
        """Drop finished drafts (and their events) past the retention, at start and daily."""
        keep = timedelta(days=self.settings.retention_days)
        while not stop.is_set():
            before = self.worker.clock() - keep
            finished = {state.value for state in TERMINAL}
            drafts, events = self.events.prune(self.account_id, finished, before)
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
