"""An account's drafts as stored, and the one way they move: ``Ledger.commit``.

Every part of the worker moves a draft only through ``commit``: the pure
``advance`` (``otp_bot.solve.drafts``) gives the moved draft; the move and
its history line are saved in one short, synchronous transaction
(``otp_bot.store.drafts``), so no cancellation can split them; then the move
is logged (``draft_transition``, a warning when the draft failed) and
reported (``WorkerHooks.changed``). Whoever commits acts on the move only
after ``commit`` returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import structlog

from otp_bot.solve.drafts import ACTIVE, Draft, Event, State, advance, event_name
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

    def drafts(self, *, pending: bool = False) -> list[Draft]:
        """The account's drafts in queue order (``pending``: not yet terminal)."""
        return self._records.load_drafts(self._account_id, pending=pending)

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
        return self._records.insert_draft(draft)

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
        self._records.save_transition(draft, moved, event, use=use, accepted=accepted, spent=spent)
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
