"""The per-account worker: the one object the daemon holds for an account's drafts.

One ``AccountWorker`` per account. It builds its parts, each with everything
it needs passed to its constructor, and runs the loop; the shell calls only
the worker:

- ``Ledger``: the account's drafts as stored, and ``commit``, the one way they move;
- ``MailIntake``: ``on_mail`` keeps what a trusted e-mail offers, wakes the loop;
- ``DraftSteps``: one committed step at a time (publish, submit, wait for mail);
- ``Outages`` and ``Holding``: re-sends after an API outage, held accounts;
- ``AfterUseTasks``: the mailbox's after-use action on a used e-mail;
- ``DraftControls``: add, retry and cancel (the control API's calls);
- ``StepLoop``: one step after another, idle in between, until stopped.

Only the loop (``run``) moves drafts that are under way; the controls only
insert, re-queue or cancel, and wake it. Each step commits its move before it
acts on it. Store writes are synchronous and short, so no cancellation can
split a transition from its history line; a stop cancels only an API call in
flight, which is safe to re-send under its stored key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from otp_bot.config import Settings
from otp_bot.imap.reading import IncomingMail
from otp_bot.mail.extract import Evidence
from otp_bot.postpress.client import PostpressClient
from otp_bot.solve.after_use import AfterUse, AfterUseTasks
from otp_bot.solve.controls import DraftControls
from otp_bot.solve.drafts import ACTIVE, Draft
from otp_bot.solve.hold import AccountHold, Outage, Verdict
from otp_bot.solve.holding import Holding
from otp_bot.solve.hooks import NO_HOOKS, WorkerHooks
from otp_bot.solve.intake import MailIntake
from otp_bot.solve.ledger import Ledger
from otp_bot.solve.loop import StepLoop
from otp_bot.solve.outages import Outages
from otp_bot.solve.reader import MailReader
from otp_bot.solve.steps import DraftSteps
from otp_bot.store.db import Store
from otp_bot.store.drafts import DraftStore
from otp_bot.store.evidence import EvidenceStore

log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class AccountWorker:
    """Publishes one account's drafts and solves their checkpoints from its mail.

    ``after_use`` acts on the e-mail whose input passed (the watcher's);
    ``hooks`` hear what happens (metrics); ``reader`` reads mail (the daemon's
    reads it in a child process, within a budget); ``clock`` is injectable
    for tests. The shell reads ``hold`` (the account is held) and ``outage``
    (the API is failing), and ``store`` and ``clock``.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: PostpressClient,
        *,
        after_use: AfterUse | None = None,
        hooks: WorkerHooks = NO_HOOKS,
        clock: Callable[[], datetime] = utcnow,
        reader: MailReader | None = None,
    ) -> None:
        self.store, self.clock = store, clock  # the shell makes writes durable, reads the time
        self._wake = asyncio.Event()  # set when there may be something to do
        account_id = settings.account_id
        self._log = log.bind(account_id=account_id)
        self._ledger = Ledger(DraftStore(store), account_id, clock, hooks)
        evidence = EvidenceStore(store)
        self._intake = MailIntake(settings, evidence, clock, self._wake, reader)
        self._after_use = AfterUseTasks(account_id, self._intake, after_use)
        self._outages = Outages(settings, self._ledger, clock)
        self._holding = Holding(
            settings,
            client=client,
            ledger=self._ledger,
            outages=self._outages,
            wake=self._wake,
            clock=clock,
        )
        self._steps = DraftSteps(
            settings,
            store=store,
            client=client,
            ledger=self._ledger,
            evidence=evidence,
            outages=self._outages,
            holding=self._holding,
            after_use=self._after_use,
            hooks=hooks,
            clock=clock,
        )
        self._controls = DraftControls(
            account_id,
            ledger=self._ledger,
            holding=self._holding,
            steps=self._steps,
            wake=self._wake,
            clock=clock,
        )
        self._loop = StepLoop(account_id, self.step, self._controls.apply_cancels, self._wake)

    # --- what the shell reads --------------------------------------------------

    @property
    def hold(self) -> AccountHold | None:
        """Why and since when the account is held (None: not held)."""
        return self._holding.hold

    @property
    def account_error(self) -> str | None:
        """The account-level error the account is held for (None: not held)."""
        return self._holding.account_error

    @property
    def outage(self) -> Outage | None:
        """Since when and how the API has been failing (None: it answers)."""
        return self._outages.outage

    @property
    def in_call(self) -> str | None:
        """The draft whose API call is in flight, if any."""
        return self._steps.in_call

    def drafts(self, *, pending: bool = False) -> list[Draft]:
        return self._ledger.drafts(pending=pending)

    def draft(self, draft_id: str) -> Draft | None:
        return self._ledger.draft(draft_id)

    def counts(self) -> dict[str, int]:
        return self._ledger.counts()

    def recount(self) -> None:
        self._ledger.recount()

    def find(self, states: set[str] | None = None, since: datetime | None = None) -> list[Draft]:
        """The account's drafts in one of ``states``, changed at or after ``since``."""
        return self._ledger.find(states, since)

    # --- what the shell calls --------------------------------------------------

    async def add_draft(
        self,
        draft_id: str,
        options: Mapping[str, Any] | None = None,
        checkpoint: str | None = None,
        *,
        retry: bool = False,
    ) -> Draft:
        """Queue a draft: ``DraftControls.add_draft``."""
        return await self._controls.add_draft(draft_id, options, checkpoint, retry=retry)

    def retry_failed(self, error: str | None = None) -> list[Draft]:
        """Queue again every failed draft (only those failed with ``error``, if given)."""
        return self._controls.retry_failed(error)

    def cancel(self, draft_id: str) -> Draft | None:
        """Cancel a draft now, or right after its call in flight (None: no such draft)."""
        return self._controls.cancel(draft_id)

    def cancel_pending(self, draft_id: str) -> bool:
        """Whether the draft is to be cancelled once its call in flight is answered."""
        return self._controls.cancel_pending(draft_id)

    async def probe(self) -> Verdict | None:
        """Probe the held account now (None when it is not held)."""
        return await self._holding.probe()

    async def on_mail(self, mail: IncomingMail) -> Evidence | None:
        """The mailbox watcher's handler: keep what a trusted e-mail offers. Never raises.

        Returns what was read from the e-mail (None if handling failed).
        """
        return await self._intake.take(mail)

    # --- the loop ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event, abort: asyncio.Event | None = None) -> None:
        """Drive the account's drafts until ``stop`` is set.

        A step under way is cancelled when ``abort`` is set (default: ``stop``;
        only an API call can be pending, safe to re-send under its key); when
        only ``stop`` is, it finishes first (an account removed by a reload).
        """
        self._resume_report()
        try:
            await self._loop.run(stop, abort)
        finally:
            self._after_use.cancel()  # an unfinished after_use leaves the e-mail in place
            self._log.info("worker_stopped")

    async def step(self) -> float:
        """Take one step; return how long to idle before the next (0: at once).

        A held account waits for (or takes) its next probe; otherwise the draft
        steps run. Cancels that waited for a call are applied first.
        """
        self._controls.apply_cancels()
        held = await self._holding.step()
        return held if held is not None else await self._steps.step()

    def _resume_report(self) -> None:
        """Log the drafts under way and the account's drafts per state; reads only the
        pending drafts and the counts, not every draft the account keeps."""
        for draft in self._ledger.drafts(pending=True):
            if draft.state in ACTIVE:
                self._log.info(
                    "draft_resumed",
                    draft_id=draft.draft_id,
                    state=draft.state.value,
                    checkpoint=draft.checkpoint,
                    since=draft.since.isoformat() if draft.since else None,
                )
        self._log.info("worker_started", drafts=self._ledger.counts())
