"""Used mail waiting for its after-use action: applied later, retried with backoff.

An action waits here while the watcher is disconnected (due at once on the
next connection) and after a failed attempt (due after a growing delay). It
stays until it succeeds or its UIDVALIDITY is gone; an action on a UID that
no longer exists succeeds without effect (RFC 3501 6.4.8), so nothing stays
for ever. The queue lives in memory: after a restart a used e-mail simply
stays where it is (harmless: its code was recorded as used).
"""

from __future__ import annotations

from dataclasses import dataclass

from otp_bot.imap.reading import IncomingMail

# First retry of a failed action after this long, doubling per attempt ...
RETRY_BASE = 5.0
# ... up to this ceiling.
RETRY_MAX = 600.0


@dataclass(frozen=True, slots=True)
class Pending:
    mail: IncomingMail
    attempt: int  # failed attempts so far
    due: float  # time.monotonic() from which it may be tried


def retry_delay(attempt: int) -> float:
    """Delay before attempt ``attempt + 1`` (``attempt`` failed ones so far, >= 1)."""
    return float(min(RETRY_MAX, RETRY_BASE * 2.0 ** min(attempt - 1, 32)))


class UsedMailQueue:
    """Pending after-use actions, taken out when due."""

    def __init__(self) -> None:
        self._items: list[Pending] = []

    def __len__(self) -> int:
        return len(self._items)

    def put(self, mail: IncomingMail, *, attempt: int, due: float) -> None:
        self._items.append(Pending(mail, attempt, due))

    def take_due(self, now: float) -> list[Pending]:
        due = [item for item in self._items if item.due <= now]
        self._items = [item for item in self._items if item.due > now]
        return due

    def next_due(self) -> float | None:
        return min((item.due for item in self._items), default=None)
