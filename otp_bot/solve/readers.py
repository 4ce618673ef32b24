"""Several mail reader children, so one account's mail does not wait behind another's.

A ``ProcessReader`` reads one mail at a time; the daemon reads for every
account, so a storm of mail (one per account at once) queued behind that one
child. ``ReaderPool`` keeps a queue of mails and up to ``limit`` children, each
served by a task of its own that takes the next mail as soon as its child
answered (not a loop iteration later, when the caller wakes up): on a busy
event loop the round trip to the child, not the reading, is what costs.
``start(accounts)`` runs, with the daemon, as many children as there are
accounts, within the limit: a storm is at most one mail per account at once,
and a child started during it makes mail wait while it imports (about 0.2 s,
up to a second on a busy machine). Beyond those, a child is started only
while every running one is busy. Each child keeps its own time budget, hard deadline and kill
(docs/hostile-mail.md): a mail that stalls or kills its child holds up only
itself, and the next mail is read by another child or a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from otp_bot.mail.extract import Evidence
from otp_bot.solve.reader import ProcessReader, ReaderUnavailable
from otp_bot.solve.reader_child import Reading

# With OTP_BOT_MAIL_READERS=0: two children per CPU this process may run on (a
# reading waits for the event loop about as long as it computes), at most this
# many (each costs about 17 MB).
AUTO_MAX = 4


def reader_count(setting: int) -> int:
    """How many children ``OTP_BOT_MAIL_READERS`` means (0: from the CPU count)."""
    if setting > 0:
        return setting
    return max(1, min(AUTO_MAX, 2 * len(os.sched_getaffinity(0))))


@dataclass(slots=True)
class _Job:
    raw: bytes
    how: Reading
    budget: float
    answer: asyncio.Future[Evidence]


class ReaderPool:
    """The daemon's reader (``MailReader``): ``read`` never blocks the loop; ``close`` when done.

    ``limit`` may be lowered or raised at any time; it bounds the children started
    from then on.
    """

    def __init__(self, limit: int = 1) -> None:
        self.limit = limit
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._readers: list[ProcessReader] = []
        self._workers: list[asyncio.Task[None]] = []
        self._idle = 0  # workers waiting for a mail

    async def read(self, raw: bytes, how: Reading, budget: float) -> Evidence:
        """The evidence of ``raw``; raises as ``ProcessReader.read``. A caller that is
        cancelled while its mail waits takes it out of the queue."""
        job = _Job(raw, how, budget, asyncio.get_running_loop().create_future())
        self._jobs.put_nowait(job)
        # More mail waiting than idle children to take it: another child, within the limit.
        if self._jobs.qsize() > self._idle and len(self._workers) < max(1, self.limit):
            self._add()
        return await job.answer

    async def start(self, accounts: int = 1) -> None:
        """Run children ahead of mail, one per account up to the limit (at least one),
        so that mail does not wait for a start; never raises: a failure is the first
        mail's to see. Called again with more accounts, it adds what is missing."""
        wanted = min(max(1, accounts), max(1, self.limit))
        new = [self._add() for _ in range(wanted - len(self._readers))]
        # Each child's task starts it too: whichever comes first.
        await asyncio.gather(*(_started(reader) for reader in new))

    def _add(self) -> ProcessReader:
        reader = ProcessReader()
        self._readers.append(reader)
        self._workers.append(asyncio.create_task(self._serve(reader)))
        return reader

    async def _serve(self, reader: ProcessReader) -> None:
        """One child's task: start its child, then read the queued mails one after the
        other, for ever. The child starts before this task takes a mail: in a storm,
        mail waits for a running child (milliseconds) rather than for a start (about
        0.2 s, and up to a second on a busy machine). Should the start fail, the
        first mail taken sees the failure (``ReaderUnavailable``) as before."""
        await _started(reader)
        while True:
            self._idle += 1
            try:
                job = await self._jobs.get()
            finally:
                self._idle -= 1
            if job.answer.done():  # its caller gave up while it waited
                continue
            try:
                found = await reader.read(job.raw, job.how, job.budget)
            except asyncio.CancelledError:
                job.answer.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - TooSlow, Unreadable...: the caller's
                if not job.answer.done():
                    job.answer.set_exception(exc)
            else:
                if not job.answer.done():
                    job.answer.set_result(found)

    @property
    def started(self) -> int:
        """Child processes started so far, by every reader of the pool."""
        return sum(reader.started for reader in self._readers)

    @property
    def idle(self) -> int:
        """Children waiting for a mail now."""
        return self._idle

    @property
    def pids(self) -> list[int]:
        """Process ids of the children running now."""
        return [reader.pid for reader in self._readers if reader.pid is not None]

    async def close(self) -> None:
        """Stop reading (a mail being read is cancelled) and end every child."""
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for reader in self._readers:
            await reader.close()


async def _started(reader: ProcessReader) -> None:
    """Start the reader's child if it has none yet; a failure is left to its first mail."""
    with contextlib.suppress(ReaderUnavailable):
        await reader.start()
