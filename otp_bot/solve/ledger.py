"""An account's drafts as stored, and the one way they move: ``Ledger.commit``.

Every part of the worker moves a draft only through ``commit``: the pure
``advance`` (``otp_bot.solve.drafts``) gives the moved draft; the move and
its history line are saved in one short, synchronous transaction
(``otp_bot.store.drafts``), so no cancellation can split them; then the move
is logged (``draft_transition``, a warning when the draft failed) and
reported (``WorkerHooks.changed``). Whoever commits acts on the move only
after ``commit`` returns. Being the one way, it also keeps the account's
drafts per state (``counts``) and its pending drafts without asking the store
again: a step reads them several times, and each read of SQLite on the event
loop also lets go of the GIL, which the IMAP pool's threads may then hold.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import structlog

from otp_bot.errors import StoreError
from otp_bot.solve.drafts import ACTIVE, TERMINAL, Draft, Event, State, advance, event_name
from otp_bot.solve.hooks import WorkerHooks, report
from otp_bot.solve.match import Candidate
from otp_bot.store.drafts import DraftStore

log = structlog.get_logger(__name__)


def new_key() -> str:
    """A fresh Idempotency-Key for one logical publish or submit attempt."""
    return uuid.uuid4().hex


class Ledger:
    """One account's drafts: read them, add one, and commit their moves."""

    def __init__(
        self,
        records: DraftStore,
        account_id: str,
        clock: Callable[[], datetime],
        hooks: WorkerHooks,
    ) -> None:
        self._records = records
        self._account_id = account_id
        self._clock = clock
        self._hooks = hooks
        self._log = log.bind(account_id=account_id)
        self._counts: Counter[str] | None = None  # per state, once counted: kept in step
        # The drafts not yet finished, in queue order, once read: kept in step.
        self._pending: dict[str, Draft] | None = None

    def drafts(self, *, pending: bool = False) -> list[Draft]:
        """The account's drafts in queue order (``pending``: not yet terminal)."""
        if not pending:
            return self._records.load_drafts(self._account_id)
        if self._pending is None:
            found = self._records.load_drafts(self._account_id, pending=True)
            self._pending = {draft.draft_id: draft for draft in found}
        return list(self._pending.values())

    def counts(self) -> dict[str, int]:
        """The account's drafts per state (only the states it has).

        Counted by the store at the first question, then kept in step with every add
        and move: after each move the daemon asks (health, STATUS=, metrics, whether
        a code is awaited), and an account keeps OTP_BOT_RETENTION_DAYS of drafts,
        thousands for a busy one (bench/history.py).
        """
        if self._counts is None:
            self._counts = Counter(self._records.count_states(self._account_id))
        return {state: count for state, count in self._counts.items() if count}

    def recount(self) -> None:
        """Drafts changed outside the ledger (the retention): read afresh when next asked."""
        self._counts = None
        self._pending = None

    def _follow(self, before: Draft | None, after: Draft) -> None:
        """Keep the counts and the pending drafts in step with a draft added (``before``
        None) or moved, as committed."""
        if self._counts is not None:
            if before is not None:
                self._counts[before.state.value] -= 1
            self._counts[after.state.value] += 1
        if self._pending is None:
            return
        if after.state not in TERMINAL and (before is None or before.state not in TERMINAL):
            self._pending[after.draft_id] = after  # in place, or a new one at the queue's end
        elif after.state in TERMINAL:
            self._pending.pop(after.draft_id, None)
        else:  # a finished draft queued again keeps its old place in the queue: read it anew
            self._pending = None

    def draft(self, draft_id: str) -> Draft | None:
        found = self._records.load_drafts(self._account_id, draft_id)
        return found[0] if found else None

    def current(self) -> Draft | None:
        """The draft under way (it holds the account's one checkpoint slot), if any."""
        return next((d for d in self.drafts(pending=True) if d.state in ACTIVE), None)

    def find(
        self,
        states: set[str] | None = None,
        since: datetime | None = None,
        error: str | None = None,
    ) -> list[Draft]:
        """The account's drafts in one of ``states``, changed at or after ``since``, failed
        with ``error``."""
        return self._records.find_drafts(self._account_id, states=states, since=since, error=error)

    def insert(self, draft: Draft) -> Draft:
        """Add a new draft (as stored: another caller's, if it was added meanwhile)."""
        stored = self._records.insert_draft(draft)
        if stored == draft:  # ours (the one added meanwhile was counted by its own caller)
            self._follow(None, stored)
        return stored

    def commit(
        self,
        draft: Draft,
        event: Event,
        *,
        use: Candidate | None = None,
        accepted: bool = False,
        spent: bool = False,
    ) -> Draft:
        """Advance the draft and commit the move (with its history line) before anything else.

        ``use``: the input recorded as used with the move; ``accepted`` /
        ``spent``: what the answer made of the input in flight.
        """
        moved = advance(draft, event, self._clock())
        try:
            self._records.save_transition(
                draft, moved, event, use=use, accepted=accepted, spent=spent
            )
        except StoreError:
            self.recount()  # whatever changed underneath, read it anew
            raise
        self._follow(draft, moved)
        emit = self._log.warning if moved.state is State.FAILED else self._log.info
        emit(
            "draft_transition",
            draft_id=moved.draft_id,
            transition=event_name(event),
            from_state=draft.state.value,
            to_state=moved.state.value,
            checkpoint=moved.checkpoint,
            job_id=moved.job_id,
            job_state=moved.job_state,
            error=moved.error,
            detail=event.describe(),
        )
        self.changed(moved)
        return moved

    def changed(self, draft: Draft) -> None:
        """Report a draft added or moved (``WorkerHooks.changed``)."""
        report(self._log, self._hooks.changed, draft)
