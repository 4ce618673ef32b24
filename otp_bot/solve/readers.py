"""Several mail reader children, so one account's mail does not wait behind another's.

A ``ProcessReader`` reads one mail at a time; the daemon reads for every
account, so a storm of mail (one per account at once) queued behind that one
child. ``ReaderPool`` holds up to ``limit`` of them and gives each mail an idle
one, starting another only while every running one is busy (the most
recently freed child is reused first, so a quiet daemon keeps a single child).
Each child keeps its own time budget, hard deadline and kill
(docs/hostile-mail.md): a mail that stalls or kills its child holds up only
itself, and the next mail is read by another child or a fresh one.
"""

from __future__ import annotations

import asyncio
import os

from otp_bot.mail.extract import Evidence
from otp_bot.solve.reader import ProcessReader
from otp_bot.solve.reader_child import Reading

# With OTP_BOT_MAIL_READERS=0: one child per CPU this process may run on, at most this
# many (each costs about 20 MB; a mail takes about a millisecond).
AUTO_MAX = 4


def reader_count(setting: int) -> int:
    """How many children ``OTP_BOT_MAIL_READERS`` means (0: from the CPU count)."""
    if setting > 0:
        return setting
    return max(1, min(AUTO_MAX, len(os.sched_getaffinity(0))))


class ReaderPool:
    """The daemon's reader (``MailReader``): ``read`` never blocks the loop; ``close`` when done.

    ``limit`` may be set until the first mail is read; later changes are ignored.
    """

    def __init__(self, limit: int = 1) -> None:
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._readers: list[ProcessReader] = []
        self._idle: list[ProcessReader] = []  # a stack: the most recently freed on top

    async def read(self, raw: bytes, how: Reading, budget: float) -> Evidence:
        """The evidence of ``raw``, read by an idle child; raises as ``ProcessReader.read``."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, self.limit))
        async with self._slots:
            reader = self._idle.pop() if self._idle else self._new()
            try:
                return await reader.read(raw, how, budget)
            finally:
                self._idle.append(reader)

    def _new(self) -> ProcessReader:
        reader = ProcessReader()
        self._readers.append(reader)
        return reader

    @property
    def started(self) -> int:
        """Child processes started so far, by every reader of the pool."""
        return sum(reader.started for reader in self._readers)

    @property
    def pids(self) -> list[int]:
        """Process ids of the children running now."""
        return [reader.pid for reader in self._readers if reader.pid is not None]

    async def close(self) -> None:
        """End every child (each after the mail it is reading, if any)."""
        for reader in self._readers:
            await reader.close()
