"""Which stored e-mail evidence a waiting draft may submit next.

Pure: the solver loads the account's unconsumed evidence and the hashes of
inputs already sent, and asks ``candidates`` / ``first_unused``. The rules:

- only evidence received at or after the checkpoint's ``since`` less the
  clock skew (so mail that arrived just before the publish answer, a race,
  still counts, and mail from an earlier checkpoint never does);
- and not before the newest e-mail the account already used: an account
  solves one checkpoint at a time, so older mail was sent for an earlier
  checkpoint, even when it lands late, within the skew (the same server's
  clock dates both, so the skew plays no part);
- only in a form the checkpoint takes: ``OTP`` takes the code; an
  ``EMAIL_VERIFICATION`` takes the configured forms in order (link, then
  PIN by default), the form this account last had accepted first;
- newest e-mail first, and each form of one e-mail before an older e-mail;
- an input (by value) is sent at most once, whatever the outcome.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from otp_bot.vocabulary import CheckpointType, InputForm


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    """What a trusted LinkedIn e-mail offered, as kept in the store."""

    id: int  # 0 until stored
    received_at: datetime
    code: str | None
    link: str | None
    message_id: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One input to try: a form of one e-mail's evidence."""

    evidence_id: int
    form: InputForm
    value: str

    @property
    def hash(self) -> str:
        return input_hash(self.value)


def input_hash(value: str) -> str:
    """The key under which a sent input is remembered as used."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def window_start(since: datetime, skew: timedelta, newest_used: datetime | None = None) -> datetime:
    """Evidence received before this instant is too old for the checkpoint."""
    start = since - skew
    return start if newest_used is None else max(start, newest_used)


def deadline(since: datetime, code_timeout: timedelta) -> datetime:
    """When a draft stops waiting for its e-mail (survives restarts: from ``since``)."""
    return since + code_timeout


def forms_for(
    checkpoint: CheckpointType | None,
    order: Sequence[InputForm],
    remembered: InputForm | None = None,
) -> list[InputForm]:
    """The input forms a checkpoint takes, in the order to try them."""
    if checkpoint == CheckpointType.OTP:
        return [InputForm.CODE]
    if checkpoint != CheckpointType.EMAIL_VERIFICATION:
        return []
    forms = [InputForm(form) for form in order]
    if remembered is not None and remembered in forms:
        forms.remove(remembered)
        forms.insert(0, InputForm(remembered))
    return forms


def candidates(
    evidence: Iterable[StoredEvidence],
    *,
    checkpoint: CheckpointType | None,
    since: datetime,
    skew: timedelta,
    order: Sequence[InputForm],
    remembered: InputForm | None = None,
    newest_used: datetime | None = None,
) -> list[Candidate]:
    """Every input the draft may try, best first (used ones not yet removed)."""
    start = window_start(since, skew, newest_used)
    forms = forms_for(checkpoint, order, remembered)
    fresh = sorted(
        (e for e in evidence if e.id and e.received_at >= start),
        key=lambda e: (e.received_at, e.id),
        reverse=True,
    )
    found: list[Candidate] = []
    for item in fresh:
        for form in forms:
            value = item.link if form == InputForm.LINK else item.code
            if value:
                found.append(Candidate(item.id, form, value))
    return found


def first_unused(found: Iterable[Candidate], used: Set[str]) -> Candidate | None:
    """The first candidate whose value was never sent."""
    return next((c for c in found if c.hash not in used), None)
