"""One account's running parts, as the service and the control API see them.

``Account`` builds an account's postpress client, worker and operations (the
operator controls and background duties, ``daemon/operations.py``), each with
everything it needs passed to its constructor; the mailbox watcher, which
accounts reading one mailbox share, is built by the fleet and attached. It
answers the control API (drafts as JSON, health; its ``operations`` answer the
operator endpoints). Metrics arrive through hooks: the client's ``on_retry``
(each retried API error), the worker's ``WorkerHooks`` (draft changes and
drafts finished, API errors, submission results, e-mail -> submit latency per
input form), the watcher's ``WatcherLinks`` and its mail handler (e-mails
trusted or rejected), the webhook outbox's deliveries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import structlog

from otp_bot.config import Settings
from otp_bot.daemon.metrics import Metrics, count_states
from otp_bot.daemon.operations import Operations
from otp_bot.imap.watcher import IncomingMail, MailboxWatcher, WatcherState
from otp_bot.mail.extract import Evidence
from otp_bot.postpress.client import PostpressClient, SharedSessions
from otp_bot.solve.drafts import TERMINAL, Draft, State
from otp_bot.solve.hooks import WorkerHooks
from otp_bot.solve.intake import unread_reason
from otp_bot.solve.reader import MailReader
from otp_bot.solve.worker import AccountWorker
from otp_bot.store.db import Store

log = structlog.get_logger(__name__)

JsonDict = dict[str, Any]


class Account:
    """An account's client, watcher, worker and operations, as one unit."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        sessions: SharedSessions | None = None,
        reader: MailReader | None = None,
        *,
        listeners: Iterable[Callable[[], None]] = (),
    ) -> None:
        """``listeners``: called after every draft transition (the control API's event feed)."""
        self.settings = settings
        self.metrics = metrics
        self.started = time.monotonic()
        self.crashed: str | None = None  # set when one of its tasks died
        self._listeners = tuple(listeners)
        label = settings.account_id
        self.client = PostpressClient.from_settings(
            settings, sessions, on_retry=partial(metrics.api_error, label)
        )
        # The watcher of its mailbox, set by attach(): accounts that share a
        # mailbox share one (otp_bot.daemon.mailboxes builds it, with links()).
        self.watcher: MailboxWatcher
        hooks = WorkerHooks(
            changed=self._on_change,
            api_error=partial(metrics.api_error, label),
            submitted=partial(metrics.submission, label),
            latency=partial(metrics.latency, label),
        )
        self.worker = AccountWorker(
            settings, store, self.client, after_use=self._after_use, hooks=hooks, reader=reader
        )
        self.operations = Operations(
            settings, self.worker, on_webhook=partial(metrics.webhook, label)
        )

    def attach(self, watcher: MailboxWatcher) -> None:
        """Read mail from (and apply after-use actions through) this watcher."""
        self.watcher = watcher

    async def _after_use(self, mail: IncomingMail) -> None:
        await self.watcher.after_use(mail)  # whichever watcher reads the mailbox now

    @property
    def account_id(self) -> str:
        return self.settings.account_id

    async def on_mail(self, mail: IncomingMail) -> None:
        """Hand the e-mail to the worker (which never raises), then count its verdict."""
        evidence = await self.worker.on_mail(mail)
        try:
            self._count_mail(evidence)
        except Exception:  # a metric must never hold the mailbox watermark back
            log.exception("mail_metrics_failed", account_id=self.account_id, uid=mail.uid)

    def _count_mail(self, evidence: Evidence | None) -> None:
        problem = unread_reason(evidence)
        if problem is not None:
            self.metrics.unreadable(self.account_id, problem)
        trusted = evidence is not None and evidence.trusted
        self.metrics.email(self.account_id, "trusted" if trusted else "rejected")

    # --- the control API's view ------------------------------------------------

    def drafts(self) -> list[JsonDict]:
        return [draft.to_dict() for draft in self.worker.drafts()]

    def draft(self, draft_id: str) -> JsonDict | None:
        return self.operations.draft(draft_id)

    async def add_draft(
        self,
        draft_id: str,
        options: Mapping[str, Any] | None,
        checkpoint: str | None,
        *,
        retry: bool = False,
    ) -> JsonDict:
        draft = await self.worker.add_draft(draft_id, options, checkpoint, retry=retry)
        await self.worker.store.durable()  # the caller is told only what is on disk
        return draft.to_dict()

    def _on_change(self, draft: Draft) -> None:
        self.operations.changed()
        for listener in self._listeners:
            listener()
        if draft.state is State.AWAITING_CODE:
            self.watcher.nudge()  # from a long IDLE to probing every few seconds
        if draft.state in TERMINAL:  # reached once per attempt (a retry re-queues it)
            self.metrics.draft_finished(self.account_id, draft.state.value, draft.error)

    def awaiting_code(self) -> bool:
        return self.counts().get(State.AWAITING_CODE.value, 0) > 0

    def counts(self) -> Mapping[str, int]:
        """Drafts per state, every state present; kept by the ledger as drafts move (cheap to
        ask often, whatever the number of drafts kept: ``Ledger.counts``)."""
        return count_states(self.worker.counts())

    def progress_age(self) -> float:
        """Seconds since the mailbox loop last made progress (or since start)."""
        return time.monotonic() - max(self.watcher.last_progress, self.started)

    def problem(self) -> str | None:
        """Why this account is unhealthy, or None."""
        age = self.progress_age()
        if self.crashed:
            return self.crashed
        if self.watcher.state is WatcherState.AUTH_FAILED:
            return "IMAP login refused: check OTP_BOT_IMAP_USER and the password or token"
        if self.worker.hold is not None:
            return f"postpress account held: {self.worker.hold.error} (otp-bot resume to probe now)"
        if self.worker.outage is not None:
            return f"postpress API unreachable: {self.worker.outage.error}"
        if age > self.settings.health_max_stale:
            return f"no mailbox progress for {age:.0f} s (mailbox {self.watcher.state})"
        return None

    def health(self) -> JsonDict:
        problem = self.problem()
        now = self.worker.clock()
        return {
            "account_id": self.account_id,
            "healthy": problem is None,
            "mailbox": self.watcher.state,
            "last_progress_age": round(self.progress_age(), 1),
            "account_error": self.worker.account_error,
            "held": self.worker.hold.to_dict(now) if self.worker.hold is not None else None,
            "api": "unreachable" if self.worker.outage is not None else "ok",
            "outage": self.worker.outage.to_dict() if self.worker.outage is not None else None,
            "problem": problem,
        }

    def progressing(self) -> bool:
        """No task crashed and the mailbox loop made progress recently.

        systemd's watchdog is fed only then, and ``GET /healthz?live=1`` (the
        liveness probe) answers 200 only then: a restart fixes these two. A
        refused IMAP login counts as progressing, and so does a held account or
        an API outage: a restart cannot fix a password, an account or the API,
        and would stop the healthy accounts.
        """
        if self.crashed is not None:
            return False
        if self.watcher.state is WatcherState.AUTH_FAILED:
            return True
        return self.progress_age() <= self.settings.health_max_stale

    def settled(self) -> bool:
        """The first mailbox connection ended (watching, or failed: it keeps retrying),
        or the account is stuck in a known, reported way."""
        return (
            self.watcher.tried
            or self.watcher.state is WatcherState.AUTH_FAILED
            or self.crashed is not None
            or self.worker.hold is not None
        )

    def refresh_metrics(self) -> None:
        self.metrics.set_drafts(self.account_id, self.counts())
        age = self.progress_age()
        self.metrics.set_health(
            self.account_id, up=self.problem() is None, last_progress_unix=time.time() - age
        )
        self.metrics.set_held(self.account_id, held=self.worker.hold is not None)
        self.metrics.set_api_reachable(self.account_id, reachable=self.worker.outage is None)
