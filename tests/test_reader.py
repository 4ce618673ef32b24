"""The daemon's mail reader: a child process, a CPU budget, a kill at the hard deadline."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from otp_bot.config import Settings
from otp_bot.imap.reading import IncomingMail
from otp_bot.mail.dkim import key_names_of
from otp_bot.mail.extract import extract
from otp_bot.solve.intake import MailIntake, unread_reason
from otp_bot.solve.reader import ProcessReader, TooSlow
from otp_bot.solve.reader_child import Reading
from otp_bot.store.db import Store
from otp_bot.store.evidence import EvidenceStore
from tests.dkim_helpers import Signer
from tests.emails import make_corpus as corpus
from tests.emails.timing import build

EMAILS = Path(__file__).parent / "emails"
GENUINE = build("text", "a", 1024)
# Linear, but a megabyte of tags costs far more than this budget (a CPU timer
# fires at the next clock tick, a few ms at most); a genuine mail costs less.
HEAVY = build("html", "<a ", 1 << 20)
TINY_BUDGET = 0.001
SMALL_BUDGET = 0.05


@pytest.fixture
async def reader() -> AsyncIterator[ProcessReader]:
    reader = ProcessReader()
    try:
        yield reader
    finally:
        await reader.close()


def _child_pid(reader: ProcessReader) -> int:
    assert reader.pid is not None
    return reader.pid


async def test_child_reads_the_corpus_as_extract_does(reader: ProcessReader) -> None:
    """Every golden file read through the child gives the same Evidence as in-process."""
    for path in sorted(EMAILS.glob("*.eml")):
        raw = path.read_bytes()
        ids = frozenset({"mx.trusted.example"})
        expected = extract(raw, trusted_authserv_ids=ids)
        if (expected.reason or "").startswith("extract_failed"):
            continue  # compared in test_extract_golden: none should be there
        assert await reader.read(raw, Reading(ids), 5.0) == expected, path.name
    assert reader.started == 1


async def test_over_budget_is_too_slow_and_the_child_goes_on(reader: ProcessReader) -> None:
    """A mail over the CPU budget is refused by the child's own timer; the child stays."""
    with pytest.raises(TooSlow) as refused:
        await reader.read(HEAVY, Reading(), TINY_BUDGET)
    assert refused.value.killed is False
    assert (await reader.read(GENUINE, Reading(), 1.0)).code == "482913"
    assert reader.started == 1


async def test_a_child_that_does_not_answer_is_killed_and_the_loop_runs(
    reader: ProcessReader,
) -> None:
    """A stopped child (as one stuck in C code would be) is killed at the hard deadline;
    meanwhile the event loop keeps running other tasks."""
    await reader.read(GENUINE, Reading(), SMALL_BUDGET)
    os.kill(_child_pid(reader), signal.SIGSTOP)
    reading = asyncio.create_task(reader.read(GENUINE, Reading(), SMALL_BUDGET))
    ticks = 0
    while not reading.done():  # bounded: the hard deadline ends the reading
        ticks += 1
        await asyncio.sleep(0.01)
    with pytest.raises(TooSlow) as refused:
        await reading
    assert refused.value.killed is True
    assert ticks >= 10  # about hard_deadline(SMALL_BUDGET) / 10 ms of ticks
    assert reader.pid is None  # the killed child is gone, not reused
    assert (await reader.read(GENUINE, Reading(), 1.0)).code == "482913"
    assert reader.started == 2


async def test_a_child_that_died_meanwhile_is_replaced(reader: ProcessReader) -> None:
    """A child killed between two mails costs nothing to the next mail: a fresh one reads it."""
    await reader.read(GENUINE, Reading(), 1.0)
    os.kill(_child_pid(reader), signal.SIGKILL)
    assert (await reader.read(GENUINE, Reading(), 1.0)).code == "482913"
    assert reader.started == 2


async def test_close_ends_the_child(reader: ProcessReader) -> None:
    """After close() the child process is gone (no process left behind at shutdown)."""
    await reader.read(GENUINE, Reading(), 1.0)
    pid = _child_pid(reader)
    await reader.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.fixture
def intake_parts(tmp_path: Path) -> Iterator[tuple[Settings, EvidenceStore]]:
    settings = Settings(
        account_id="acc_reader",
        api_key="pp_test_reader_key",
        imap_host="127.0.0.1",
        imap_user="bot@example.test",
        imap_password="unused",
        imap_security="none",
        state_dir=tmp_path,
        mail_cpu_budget=TINY_BUDGET,
    )
    store = Store(settings.state_db)
    try:
        yield settings, EvidenceStore(store)
    finally:
        store.close()


async def test_intake_rejects_a_mail_over_budget_and_says_so(
    reader: ProcessReader, intake_parts: tuple[Settings, EvidenceStore]
) -> None:
    """Over OTP_BOT_MAIL_CPU_BUDGET: rejected too_slow, mail_too_slow logged, nothing stored."""
    settings, evidence = intake_parts
    intake = MailIntake(settings, evidence, lambda: datetime.now(UTC), asyncio.Event(), reader)
    mail = IncomingMail(1, 5, HEAVY, True, None, size=len(HEAVY))
    with capture_logs() as logs:
        found = await intake.take(mail)
    assert found is not None
    assert (found.trusted, found.reason, unread_reason(found)) == (False, "too_slow", "too_slow")
    slow = [line for line in logs if line["event"] == "mail_too_slow"]
    assert [(s["uid"], s["size"], s["budget"]) for s in slow] == [(5, len(HEAVY), TINY_BUDGET)]
    assert evidence.evidence_of_input("acc_reader", "anything") is None


async def test_intake_records_what_the_pre_filter_could_not_read(
    intake_parts: tuple[Settings, EvidenceStore],
) -> None:
    """A message the pre-filter could not read is rejected with its error, never read again."""
    settings, evidence = intake_parts
    intake = MailIntake(settings, evidence, lambda: datetime.now(UTC), asyncio.Event())
    mail = IncomingMail(1, 6, b"From: ((((", False, None, size=10, unreadable="RecursionError")
    with capture_logs() as logs:
        found = await intake.take(mail)
    assert found is not None
    assert found.reason == "mail_unreadable: RecursionError"
    assert unread_reason(found) == "RecursionError"
    unreadable = [line for line in logs if line["event"] == "mail_unreadable"]
    assert [(u["uid"], u["size"], u["error"], u["stage"]) for u in unreadable] == [
        (6, 10, "RecursionError", "pre-filter")
    ]


async def test_dkim_keys_reach_the_child(reader: ProcessReader, tmp_path: Path) -> None:
    """OTP_BOT_DKIM_VERIFY=self through the child: the fetched key verifies the signature;
    without it the same mail is refused."""
    signer = Signer.create(tmp_path)
    raw = signer.sign(
        (
            corpus.headers("Ana, here's your PIN", auth="")
            + corpus.part("text/plain", "PIN: 528104\n")
        ).encode()
    )
    keys = {name.lower(): signer.lookup(name) for name in key_names_of(raw)}
    found = await reader.read(raw, Reading(server_results=False, keys=keys), 5.0)
    assert (found.trusted, found.dkim) == (True, "pass")
    refused = await reader.read(raw, Reading(server_results=False, keys={}), 5.0)
    assert refused.trusted is False
    assert refused == extract(raw, server_results=False, dkim_keys=lambda _name: None)
