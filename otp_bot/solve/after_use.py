"""After an input passed: the mailbox's after-use action on its e-mail, beside the worker.

``OTP_BOT_MAIL_AFTER_USE`` (seen, move, delete) is carried out by the mailbox
watcher; the worker only asks, in a task of its own, so a slow or failing
mailbox never holds a draft up. A failure is logged
(``mail_after_use_failed``) and harmless: the e-mail stays where it is, its
input recorded as used. Tasks still running when the worker stops are
cancelled, which also leaves the e-mail in place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from otp_bot.imap.reading import IncomingMail
from otp_bot.solve.drafts import Draft
from otp_bot.solve.intake import MailIntake

log = structlog.get_logger(__name__)

# Marks, moves or deletes the e-mail whose input passed (``MailboxWatcher.after_use``).
AfterUse = Callable[[IncomingMail], Awaitable[Any]]


class AfterUseTasks:
    """Runs ``action`` on the e-mail of each accepted input (none: ``action`` is None)."""

    def __init__(self, account_id: str, intake: MailIntake, action: AfterUse | None) -> None:
        self._intake = intake  # knows which e-mail an input came from
        self._action = action
        self._log = log.bind(account_id=account_id)
        self._tasks: set[asyncio.Task[None]] = set()  # actions in flight

    def accepted(self, draft: Draft) -> None:
        """The draft's input passed: start the action on its e-mail; return at once."""
        if self._action is None:
            return
        mail = self._intake.used(draft.input_hash or "")
        if mail is None:
            return
        task = asyncio.create_task(self._apply(self._action, mail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        """Cancel the actions still running (their e-mails stay where they are)."""
        for task in self._tasks:
            task.cancel()

    async def _apply(self, action: AfterUse, mail: IncomingMail) -> None:
        try:
            await action(mail)
        except Exception:  # noqa: BLE001 - leaving a used e-mail in place is harmless
            self._log.warning("mail_after_use_failed", uid=mail.uid, exc_info=True)
