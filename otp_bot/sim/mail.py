"""The simulator's post office: hands LinkedIn's e-mails to the mailbox, as mail systems do.

``Post.send`` delivers one checkpoint's batch (a decoy first, if any, then
the genuine e-mail) in a background task, following the draft's ``Script``:
a delay before the first APPEND (``mail_delay``, or ``late_delay`` for the
script's ``late_mails``), ``mail_duplicates`` more copies of the
genuine e-mail (same bytes, same Message-ID) ``duplicate_delay`` apart, and a
failed APPEND retried for ``mail_retry`` seconds (an MTA's queue while the
mail server is down). Every e-mail is remembered with when it was issued and
when each APPEND of it completed: the ground truth for e-mail → submit latency.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from otp_bot.sim.linkedin_mail import DeliveryError, LinkedinMail, MailTarget, append
from otp_bot.sim.script import Script

log = structlog.get_logger(__name__)

# A failed APPEND is tried again this often while the script's mail_retry lasts.
RETRY_EVERY = 0.25


@dataclass(slots=True)
class MailRecord:
    """When one e-mail was issued and each time it landed in the mailbox (epoch seconds)."""

    type: str
    issued_at: float = field(default_factory=time.time)
    delivered_at: list[float] = field(default_factory=list)
    failed_appends: int = 0  # APPENDs that failed (each retried while mail_retry lasts)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "issued_at": self.issued_at,
            "delivered_at": self.delivered_at,
            "failed_appends": self.failed_appends,
        }


class Post:
    """Delivers e-mails in background tasks and keeps the record of what was sent."""

    def __init__(self, mailbox: MailTarget | None) -> None:
        self.mailbox = mailbox
        self.mails: list[tuple[str, LinkedinMail]] = []  # (draft_id, mail), in order issued
        self.records: dict[str, MailRecord] = {}  # by Message-ID
        self.errors: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self, draft_id: str, kind: str, batch: list[LinkedinMail], script: Script, delay: float
    ) -> None:
        """Record the batch as issued; deliver it ``delay`` s later (if there is a mailbox)."""
        self.mails.extend((draft_id, mail) for mail in batch)
        for mail in batch:
            self.records[mail.message_id] = MailRecord(kind)
        if self.mailbox is None:
            return
        task = asyncio.create_task(self._deliver(self.mailbox, draft_id, batch, script, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def record(self, message_id: str) -> dict[str, Any]:
        found = self.records.get(message_id)
        return found.to_json() if found is not None else {}

    def clear(self) -> None:
        self.mails.clear()
        self.records.clear()

    async def wait(self) -> None:
        """Return once every e-mail issued so far was delivered (or failed)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(
        self,
        target: MailTarget,
        draft_id: str,
        batch: list[LinkedinMail],
        script: Script,
        delay: float,
    ) -> None:
        if delay:
            await asyncio.sleep(delay)  # the scripted mail delay itself
        for mail in batch:
            await self._append(target, draft_id, mail, script.mail_retry)
        for _ in range(script.mail_duplicates):
            if script.duplicate_delay:
                await asyncio.sleep(script.duplicate_delay)  # the scripted gap between copies
            await self._append(target, draft_id, batch[-1], script.mail_retry)

    async def _append(
        self, target: MailTarget, draft_id: str, mail: LinkedinMail, retry_for: float
    ) -> None:
        give_up = time.monotonic() + retry_for
        while True:
            try:
                await asyncio.to_thread(_render_and_append, target, mail)
            except DeliveryError as exc:
                record = self.records.get(mail.message_id)  # gone after a reset
                if record is not None:
                    record.failed_appends += 1
                if time.monotonic() < give_up:
                    await asyncio.sleep(RETRY_EVERY)  # the MTA's queue: try again shortly
                    continue
                self._failed(draft_id, exc)
                return
            record = self.records.get(mail.message_id)  # gone after a reset
            if record is not None:
                record.delivered_at.append(time.time())
            log.info("sim_mail_delivered", draft_id=draft_id, genuine=mail.genuine)
            return

    def _failed(self, draft_id: str, exc: BaseException) -> None:
        self.errors.append(f"{draft_id}: {type(exc).__name__}: {exc}")
        log.error("sim_mail_failed", draft_id=draft_id, error=f"{type(exc).__name__}: {exc}")


def _render_and_append(target: MailTarget, mail: LinkedinMail) -> None:
    """On the delivery thread: the mail's bytes (rendered at first use) and their APPEND."""
    append(target, mail.raw)
