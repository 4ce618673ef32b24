"""Used mail: the after-use action (seen, move, delete), applied now, later or again.

An action waits while the watcher is disconnected (due at once on the next
connection) and after a failed attempt (due after a growing delay, counted
through ``WatcherLinks.after_use_failed``). It stays until it succeeds or its
UIDVALIDITY is gone; an action on a UID that no longer exists succeeds without
effect (RFC 3501 6.4.8), so nothing stays for ever. The queue lives in memory:
after a restart a used e-mail simply stays where it is (harmless: its code
was recorded as used).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger

from otp_bot.config import Settings
from otp_bot.errors import MailboxError
from otp_bot.imap.actions import effective
from otp_bot.imap.lag import WatcherLinks
from otp_bot.imap.lane import ImapLane
from otp_bot.imap.reading import IncomingMail
from otp_bot.imap.session import FolderState

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


class UsedMail:
    """Applies OTP_BOT_MAIL_AFTER_USE through the watcher's IMAP lane."""

    def __init__(
        self,
        settings: Settings,
        imap: ImapLane,
        links: WatcherLinks,
        log: FilteringBoundLogger,
    ) -> None:
        self._settings = settings
        self._imap = imap
        self._links = links
        self._log = log
        self._pending: list[Pending] = []

    def next_due(self) -> float | None:
        return min((item.due for item in self._pending), default=None)

    async def apply_due(self) -> None:
        now = time.monotonic()
        due = [item for item in self._pending if item.due <= now]
        self._pending = [item for item in self._pending if item.due > now]
        for item in due:
            await self.apply(item.mail, attempt=item.attempt)

    async def apply(self, mail: IncomingMail, *, attempt: int = 0) -> None:
        """One attempt; deferred while disconnected, queued again after a failure."""
        action, target = self._settings.mail_after_use, self._settings.mail_move_folder
        session = self._imap.session
        if session is None or session.folder is None:
            self._pending.append(Pending(mail, attempt, 0.0))
            self._log.info("mailbox_after_use_deferred", uid=mail.uid)
            return
        self._imap.wake()
        try:
            done = await self._imap.call(session.apply, mail.uidvalidity, mail.uid, action, target)
        except MailboxError as exc:
            delay = retry_delay(attempt + 1)
            self._pending.append(Pending(mail, attempt + 1, time.monotonic() + delay))
            self._links.after_use_failed(str(action))
            self._log.warning(
                "mailbox_after_use_failed",
                uid=mail.uid,
                action=str(action),
                error=str(exc),
                attempt=attempt + 1,
                retry_in=delay,
            )
            return
        if done is None:
            self._log.info("mailbox_after_use_skipped", uid=mail.uid, action=str(action))
        else:
            self._log.info("mailbox_after_use", uid=mail.uid, action=str(done))

    def warn_degraded(self, folder: FolderState) -> None:
        """At each connection: say loudly when move/delete can only mark seen here."""
        wanted = self._settings.mail_after_use
        if effective(wanted, folder.server) is wanted:
            return
        self._log.error(
            "mailbox_after_use_degraded",
            action=str(wanted),
            done_instead="seen",
            capabilities=" ".join(sorted(folder.server.capabilities)),
            reason="the server announces neither MOVE nor UIDPLUS after login, so one message "
            "cannot be removed without expunging other clients' deleted mail",
        )
