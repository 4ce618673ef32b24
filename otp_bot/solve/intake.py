"""The worker's mail intake: keep what a trusted e-mail offers, durably, then wake the worker.

One summary line per e-mail: ``mail_handled`` (evidence stored) or
``mail_rejected`` with the reason (untrusted and why, nothing found, a
Message-ID already stored, ``too_slow``, ``mail_unreadable: <error>``); a mail
the reader could not read also gets ``mail_unreadable`` or ``mail_too_slow``.
Codes and links are masked in every later log line, wherever they appear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from otp_bot.config import DkimVerify, Settings
from otp_bot.imap.watcher import IncomingMail
from otp_bot.logs import remember_sensitive
from otp_bot.mail.dkim import key_names_of
from otp_bot.mail.extract import Evidence
from otp_bot.solve.dkimkeys import DkimKeys
from otp_bot.solve.match import StoredEvidence
from otp_bot.solve.reader import (
    InProcessReader,
    MailReader,
    ReaderUnavailable,
    TooSlow,
    Unreadable,
)
from otp_bot.solve.reader_child import Reading
from otp_bot.store.evidence import EvidenceStore

log = structlog.get_logger(__name__)

# Reasons of the readings of mail that could not be read (counted by the shell).
TOO_SLOW = "too_slow"
UNREADABLE = "mail_unreadable"


class MailIntake:
    """Turns the watcher's messages into stored evidence."""

    def __init__(
        self,
        settings: Settings,
        store: EvidenceStore,
        clock: Callable[[], datetime],
        wake: asyncio.Event,
        reader: MailReader | None = None,
        *,
        dkim_keys: DkimKeys | None = None,
    ) -> None:
        self._reader = reader or InProcessReader()
        self._budget = settings.mail_cpu_budget
        self._store = store
        self._clock = clock
        self._wake = wake
        self._account_id = settings.account_id
        self._trusted_ids = frozenset(settings.trusted_authserv_ids)
        # OTP_BOT_DKIM_VERIFY: server reads Authentication-Results only; self
        # verifies LinkedIn's signature here only; both requires the two.
        self._server_results = settings.dkim_verify is not DkimVerify.SELF
        self._keys: DkimKeys | None = None
        if settings.dkim_verify is not DkimVerify.SERVER:
            self._keys = dkim_keys or DkimKeys.from_nameservers(settings.dkim_nameservers)
        self._log = log.bind(account_id=settings.account_id)

    async def take(self, mail: IncomingMail) -> Evidence | None:
        """Store the e-mail's code and link if it is trusted; log instead of raising.

        Returns the reading (None when storing failed) so the shell can count it.
        Whatever the mail does to the reader (an error, the time budget) gives
        a rejected reading, so the watcher records the message as handled and
        goes on. Only ``ReaderUnavailable`` is raised: not the mail's fault, so
        the watcher keeps the message and tries it again later.
        """
        found = await self._read(mail)
        try:
            return self._keep(mail, found)
        except Exception:  # noqa: BLE001 - the watcher's loop must go on; the line says why
            self._log.exception("mail_handling_failed", uid=mail.uid)
            return None

    async def _read(self, mail: IncomingMail) -> Evidence:
        if mail.unreadable is not None:
            return self._unreadable(mail, mail.unreadable, "pre-filter")
        try:
            return await self._reader.read(mail.raw, await self._how(mail), self._budget)
        except TooSlow as exc:
            size = _size(mail)
            self._log.warning(
                "mail_too_slow", uid=mail.uid, size=size, budget=self._budget, killed=exc.killed
            )
            return _refused(TOO_SLOW)
        except Unreadable as exc:
            return self._unreadable(mail, exc.error, "reading")
        except ReaderUnavailable:
            raise
        # Exception includes RecursionError and MemoryError (an in-process reader);
        # cancellation, KeyboardInterrupt and SystemExit go through.
        except Exception as exc:  # noqa: BLE001 - one message must not stop the watcher
            return self._unreadable(mail, type(exc).__name__, "reading")

    async def _how(self, mail: IncomingMail) -> Reading:
        """How to read this mail; the DKIM keys it needs are fetched here (DNS), not in
        the reader, which does no I/O."""
        keys = None
        if self._keys is not None:
            names = key_names_of(mail.raw)
            await self._keys.fetch(names)
            keys = {name.lower(): self._keys.lookup(name) for name in names}
        return Reading(self._trusted_ids, self._server_results, keys)

    def _unreadable(self, mail: IncomingMail, error: str, stage: str) -> Evidence:
        self._log.warning(
            "mail_unreadable", uid=mail.uid, size=_size(mail), error=error, stage=stage
        )
        return _refused(f"{UNREADABLE}: {error}")

    def used(self, input_hash: str) -> IncomingMail | None:
        """Where the e-mail an accepted input came from is (for ``after_use``).

        Only its folder position (UIDVALIDITY, UID) is kept, which is all
        ``after_use`` needs, and it survives restarts.
        """
        found = self._store.evidence_of_input(self._account_id, input_hash)
        if found is None or found.uidvalidity is None or found.uid is None:
            return None
        return IncomingMail(found.uidvalidity, found.uid, b"", False, found.received_at)

    def _keep(self, mail: IncomingMail, found: Evidence) -> Evidence:
        about: dict[str, object] = {
            "uid": mail.uid,
            "message_id": found.message_id,
            "sender": found.sender,
        }
        if found.dkim is not None:
            about["dkim"] = found.dkim
        reason = _unusable(found)
        if reason is not None:
            self._log.info("mail_rejected", reason=reason, **about)
            return found
        for value in (found.code, found.link):
            if value:
                remember_sensitive(value)
        received = _aware(found.received_at or mail.internal_date) or self._clock()
        evidence = StoredEvidence(
            0, received, found.code, found.link, found.message_id, mail.uidvalidity, mail.uid
        )
        stored = self._store.add_evidence(self._account_id, evidence, self._clock())
        if stored is None:
            self._log.info("mail_rejected", reason="message_id_already_stored", **about)
            return found
        self._log.info(
            "mail_handled",
            evidence_id=stored,
            code=found.code,
            link=found.link,
            received_at=received.isoformat(),
            complete=mail.complete,
            **about,
        )
        self._wake.set()
        return found


def unread_reason(found: Evidence | None) -> str | None:
    """``too_slow`` or the error class when the mail could not be read, else None."""
    reason = found.reason if found is not None else None
    if reason == TOO_SLOW:
        return TOO_SLOW
    if reason is not None and reason.startswith(f"{UNREADABLE}: "):
        return reason.removeprefix(f"{UNREADABLE}: ")
    return None


def _size(mail: IncomingMail) -> int:
    return mail.size if mail.size is not None else len(mail.raw)


def _refused(reason: str) -> Evidence:
    """The reading of a mail that could not be read: untrusted, nothing in it."""
    return Evidence(None, False, reason, None, None, None, None, "")


def _unusable(found: Evidence) -> str | None:
    if not found.trusted:
        return found.reason or "untrusted"
    if not found.code and not found.link:
        return found.reason or "no_code_or_link"
    return None


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
