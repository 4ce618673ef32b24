"""The per-account worker against the postpress simulator, fed LinkedIn's real e-mail bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from otp_bot.config import Settings
from otp_bot.errors import InputRejected
from otp_bot.imap.watcher import IncomingMail, MailboxWatcher
from otp_bot.postpress.client import PostpressClient, RetryPolicy
from otp_bot.postpress.wire import Checkpoint
from otp_bot.sim.app import Simulator
from otp_bot.sim.linkedin_mail import LinkedinMail, MailTarget, compose
from otp_bot.sim.script import Fault, Script
from otp_bot.solve import drafts as d
from otp_bot.solve.drafts import Draft, State
from otp_bot.solve.hooks import WorkerHooks
from otp_bot.solve.match import Candidate, StoredEvidence, input_hash
from otp_bot.solve.worker import AccountWorker
from otp_bot.store.db import Store
from otp_bot.store.drafts import DraftStore
from otp_bot.store.evidence import EvidenceStore
from tests.dovecot import Dovecot
from tests.mailbox_helpers import settings_for

API_KEY = "pp_test_solver_k3y"
ACCOUNT = "acc_solver_01"
AUTHSERV = "mx.example.test"
WAIT = 10.0  # generous bound for a state to be reached; never a synchronisation sleep


class Harness:
    """One account: store, client and worker, the simulator's mail handed to ``on_mail``."""

    def __init__(
        self, sim: Simulator, base_url: str, state_dir: Path, account: str, **settings: Any
    ) -> None:
        self.sim = sim
        self.settings = Settings(
            account_id=account,
            api_key=API_KEY,
            api_base_url=base_url,
            imap_host="127.0.0.1",
            imap_user="bot@example.test",
            imap_password="unused",
            imap_security="none",
            state_dir=state_dir,
            **settings,
        )
        self.store = Store(self.settings.state_db)
        self.records = DraftStore(self.store)
        self.evidence = EvidenceStore(self.store)
        self.client = PostpressClient(
            base_url=base_url,
            api_key=API_KEY,
            account_id=account,
            retry=RetryPolicy(attempts=3, max_time=30, wait=False),
        )
        self.auto_mail = True
        self.delivered = 0
        self.uid = 0
        self.changed = asyncio.Condition()
        self.worker = self.new_worker()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def new_worker(self, clock: Callable[[], datetime] | None = None) -> AccountWorker:
        return AccountWorker(
            self.settings,
            self.store,
            self.client,
            hooks=WorkerHooks(changed=self._on_change),
            clock=clock or (lambda: datetime.now(UTC)),
        )

    def _on_change(self, _draft: Draft) -> None:
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        if self.auto_mail:
            await self.deliver()
        async with self.changed:
            self.changed.notify_all()

    async def deliver(self) -> None:
        """Hand every e-mail the simulator issued since the last call to the worker."""
        while self.delivered < len(self.sim.mails):
            _draft_id, mail = self.sim.mails[self.delivered]
            self.delivered += 1
            await self.feed(mail)

    async def feed(self, mail: LinkedinMail, internal_date: datetime | None = None) -> None:
        self.uid += 1
        when = internal_date or datetime.now(UTC)
        await self.worker.on_mail(IncomingMail(7, self.uid, mail.raw, True, when))

    def start(self) -> None:
        self.stop.clear()
        self.task = asyncio.create_task(self.worker.run(self.stop))

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, WAIT)

    async def until(self, check: Callable[[], bool]) -> None:
        async def waiting() -> None:
            async with self.changed:
                await self.changed.wait_for(check)

        await asyncio.wait_for(waiting(), WAIT)

    async def reaches(self, draft_id: str, *states: State) -> Draft:
        def there() -> bool:
            draft = self.worker.draft(draft_id)
            return draft is not None and draft.state in states

        await self.until(there)
        found = self.worker.draft(draft_id)
        assert found is not None
        return found

    def inputs(self, draft_id: str) -> list[str]:
        """The inputs the simulator received for this draft, in order."""
        return [
            r.body["input"]
            for r in self.sim.requests
            if r.endpoint == "checkpoint" and r.draft_id == draft_id
        ]

    def mails(self, draft_id: str) -> list[LinkedinMail]:
        return [m for dr, m in self.sim.mails if dr == draft_id and m.genuine]


@pytest.fixture
async def sim() -> AsyncIterator[tuple[Simulator, str]]:
    """The simulator on a free loopback port; it records its e-mails instead of sending them."""
    simulator = Simulator(api_key=API_KEY, authserv_id=AUTHSERV)
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    yield simulator, str(server.make_url("/v1"))
    await server.close()


@pytest.fixture
async def make(sim: tuple[Simulator, str], tmp_path: Path) -> AsyncIterator[Callable[..., Harness]]:
    """Build a harness with settings overrides; its worker is stopped afterwards."""
    made: list[Harness] = []

    def build(account: str = ACCOUNT, **settings: Any) -> Harness:
        harness = Harness(sim[0], sim[1], tmp_path, account, **settings)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        await harness.halt()
        await harness.client.close()
        harness.store.close()


async def test_plain_otp_is_solved_from_the_mail(make: Callable[..., Harness]) -> None:
    """publish -> OTP checkpoint -> the e-mail's code -> published, history readable."""
    h = make()
    h.start()
    await h.worker.add_draft("D-otp")
    draft = await h.reaches("D-otp", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    assert (draft.job_state, draft.error) == ("active", None)
    assert draft.job_id
    assert h.inputs("D-otp") == [h.mails("D-otp")[0].code]
    events = [e["event"] for e in h.records.draft_history(ACCOUNT, "D-otp")]
    assert events == ["added", "start_publish", "got_checkpoint", "submit", "got_published"]
    code = h.mails("D-otp")[0].code
    assert all(code not in str(e) for e in h.records.draft_history(ACCOUNT, "D-otp"))
    # Once answered, neither the code nor its e-mail's evidence lingers in the store.
    assert [r["value"] for r in h.store.query("SELECT value FROM used_input")] == [""]
    assert [tuple(r) for r in h.store.query("SELECT code, link FROM evidence")] == [(None, None)]


async def test_chain_email_verification_then_otp(make: Callable[..., Harness]) -> None:
    """EMAIL_VERIFICATION is solved with the link, then the OTP with the next e-mail's code."""
    h = make()
    h.sim.script("D-chain", Script(checkpoints=("EMAIL_VERIFICATION", "OTP")))
    h.start()
    await h.worker.add_draft("D-chain")
    draft = await h.reaches("D-chain", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    verify, otp = h.mails("D-chain")
    assert h.inputs("D-chain") == [verify.link, otp.code]
    assert h.evidence.verification_form(ACCOUNT) == "link"


async def test_link_rejected_then_pin_accepted_and_remembered(
    make: Callable[..., Harness],
) -> None:
    """A burnt link makes the PIN of the same e-mail next; the PIN then goes first."""
    h = make()
    h.sim.script("D-pin1", Script(checkpoints=("EMAIL_VERIFICATION",), accept=("pin",)))
    h.sim.script("D-pin2", Script(checkpoints=("EMAIL_VERIFICATION",), accept=("pin",)))
    h.start()
    await h.worker.add_draft("D-pin1")
    assert (await h.reaches("D-pin1", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    first = h.mails("D-pin1")[0]
    assert h.inputs("D-pin1") == [first.link, first.code]
    assert h.evidence.verification_form(ACCOUNT) == "pin"
    await h.worker.add_draft("D-pin2")
    assert (await h.reaches("D-pin2", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert h.inputs("D-pin2") == [h.mails("D-pin2")[0].code]


async def test_invalid_solution_then_fresh_code_after_republish(
    make: Callable[..., Harness],
) -> None:
    """A burnt OTP is never re-sent: the draft waits, publishes again and uses the new code."""
    h = make(code_timeout=1.0, republish_limit=2)
    h.sim.script("D-inv", Script(invalid_solutions=1))
    h.start()
    await h.worker.add_draft("D-inv")
    draft = await h.reaches("D-inv", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    first, second = h.mails("D-inv")
    assert h.inputs("D-inv") == [first.code, second.code]
    assert draft.republishes == 1


async def test_expired_link_publishes_again(make: Callable[..., Harness]) -> None:
    """expired_link re-publishes at once and the new e-mail's link is used."""
    h = make()
    h.sim.script("D-exp", Script(checkpoints=("EMAIL_VERIFICATION",), expired_links=1))
    h.start()
    await h.worker.add_draft("D-exp")
    draft = await h.reaches("D-exp", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    first, second = h.mails("D-exp")
    assert h.inputs("D-exp") == [first.link, second.link]
    assert draft.republishes == 1
    details = [e["detail"] for e in h.records.draft_history(ACCOUNT, "D-exp")]
    assert "publish again: errors/expired_link" in details


async def test_expired_link_spends_the_whole_e_mail(make: Callable[..., Harness]) -> None:
    """After expired_link, the PIN of that same e-mail is never tried for the new checkpoint."""
    h = make(code_timeout=1.0, republish_limit=1)
    h.auto_mail = False
    h.sim.script("D-exp1", Script(checkpoints=("EMAIL_VERIFICATION",), expired_links=1))
    h.start()
    await h.worker.add_draft("D-exp1")
    await h.reaches("D-exp1", State.AWAITING_CODE)
    await h.deliver()  # the first e-mail only; the re-publish's e-mail never arrives
    draft = await h.reaches("D-exp1", State.FAILED, State.PUBLISHED)
    assert (draft.error, draft.republishes) == ("code_timeout", 1)
    assert h.inputs("D-exp1") == [h.mails("D-exp1")[0].link]


async def test_expired_link_beyond_the_bound_fails(make: Callable[..., Harness]) -> None:
    """With no re-publish left, expired_link fails the draft with that type."""
    h = make(republish_limit=0)
    h.sim.script("D-exp0", Script(checkpoints=("EMAIL_VERIFICATION",), expired_links=1))
    h.start()
    await h.worker.add_draft("D-exp0")
    draft = await h.reaches("D-exp0", State.PUBLISHED, State.FAILED)
    assert (draft.state, draft.error) == (State.FAILED, "errors/expired_link")


async def test_code_timeout_republishes_then_fails(make: Callable[..., Harness]) -> None:
    """No e-mail: wait code_timeout, publish again republish_limit times, then fail clearly."""
    h = make(code_timeout=0.2, republish_limit=2)
    h.sim.script("D-quiet", Script(mail=False))
    h.start()
    await h.worker.add_draft("D-quiet")
    draft = await h.reaches("D-quiet", State.FAILED, State.PUBLISHED)
    assert (draft.state, draft.error, draft.republishes) == (State.FAILED, "code_timeout", 2)
    assert "gave up after publishing again 2 time(s)" in (draft.error_detail or "")
    publishes = [r for r in h.sim.requests if r.endpoint == "publish"]
    assert len(publishes) == 3
    assert len({r.idempotency_key for r in publishes}) == 3


async def test_stale_mail_before_since_less_skew_is_ignored(make: Callable[..., Harness]) -> None:
    """A trusted e-mail received before the checkpoint (beyond the skew) is never submitted."""
    h = make(code_timeout=0.3, republish_limit=0, clock_skew=60)
    h.auto_mail = False
    old = datetime.now(UTC) - timedelta(minutes=10)
    await h.feed(compose("OTP", "bot@example.test", old, authserv_id=AUTHSERV), old)
    h.start()
    await h.worker.add_draft("D-stale")
    draft = await h.reaches("D-stale", State.FAILED, State.PUBLISHED)
    assert (draft.state, draft.error) == (State.FAILED, "code_timeout")
    assert h.inputs("D-stale") == []


async def test_late_mail_older_than_a_used_one_is_not_submitted(
    make: Callable[..., Harness],
) -> None:
    """An e-mail dated before one the account already used is an earlier checkpoint's: landing
    late (within the skew), it is not submitted for the next one (bench/soak.py --late-mail)."""
    h = make(code_timeout=0.5, republish_limit=0)
    h.start()
    await h.worker.add_draft("D-first")
    assert (await h.reaches("D-first", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    earlier = datetime.now(UTC) - timedelta(seconds=30)  # before D-first's e-mail, within skew
    await h.feed(compose("OTP", "bot@example.test", earlier, authserv_id=AUTHSERV), earlier)
    h.sim.script("D-next", Script(mail=False))
    await h.worker.add_draft("D-next")
    draft = await h.reaches("D-next", State.FAILED, State.PUBLISHED)
    assert (draft.state, draft.error) == (State.FAILED, "code_timeout")
    assert h.inputs("D-next") == []


async def test_race_mail_before_checkpoint_is_recorded_is_used(
    make: Callable[..., Harness],
) -> None:
    """An e-mail stored before the checkpoint reached the worker (within the skew) solves it."""
    h = make()
    h.auto_mail = False
    answer = await h.client.publish("D-race")  # someone else's publish got the checkpoint
    assert isinstance(answer, Checkpoint)
    await h.deliver()  # its e-mail arrives before the checkpoint is registered
    h.start()
    draft = await h.worker.add_draft("D-race", checkpoint="OTP")
    assert draft.state is State.AWAITING_CODE
    draft = await h.reaches("D-race", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    assert h.inputs("D-race") == [h.mails("D-race")[0].code]


async def test_decoy_is_rejected_and_the_genuine_code_used(make: Callable[..., Harness]) -> None:
    """A spoofed look-alike e-mail is logged as rejected and never stored or submitted."""
    h = make()
    h.auto_mail = False
    h.sim.script("D-decoy", Script(decoy=True))
    h.start()
    await h.worker.add_draft("D-decoy")
    await h.reaches("D-decoy", State.AWAITING_CODE)
    decoy, genuine = (mail for _, mail in h.sim.mails)
    assert not decoy.genuine
    with capture_logs() as logs:
        await h.feed(decoy)
    assert [(e["event"], e["log_level"]) for e in logs] == [("mail_rejected", "info")]
    assert h.evidence.fresh_evidence(ACCOUNT, datetime(2000, 1, 1, tzinfo=UTC)) == []
    await h.feed(genuine)
    draft = await h.reaches("D-decoy", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    assert h.inputs("D-decoy") == [h.mails("D-decoy")[0].code]


async def test_account_error_holds_the_account(make: Callable[..., Harness]) -> None:
    """disconnected_account holds the draft and the account; drafts added meanwhile queue."""
    h = make()
    fault = Fault("errors/disconnected_account", endpoint="publish")
    h.sim.script("D-acc1", Script(faults=(fault,)))
    await h.worker.add_draft("D-acc1")
    await h.worker.add_draft("D-acc2")
    with capture_logs() as logs:
        h.start()
        held = await h.reaches("D-acc1", State.HELD)
    assert h.worker.account_error == "errors/disconnected_account"
    assert held.error == "errors/disconnected_account"
    assert [e["log_level"] for e in logs if e["event"] == "account_held"] == ["error"]
    late = await h.worker.add_draft("D-acc3")
    assert (late.state, late.error) == (State.QUEUED, None)
    queued = h.worker.draft("D-acc2")
    assert queued is not None
    assert queued.state is State.QUEUED
    assert [r.draft_id for r in h.sim.requests] == ["D-acc1"]


async def test_one_checkpoint_at_a_time_in_queue_order(make: Callable[..., Harness]) -> None:
    """The second draft is published only after the first left awaiting_code."""
    h = make()
    h.start()
    await h.worker.add_draft("D-q1")
    await h.worker.add_draft("D-q2")
    await h.reaches("D-q2", State.PUBLISHED)
    order = [(r.endpoint, r.draft_id) for r in h.sim.requests]
    assert order == [
        ("publish", "D-q1"),
        ("checkpoint", "D-q1"),
        ("publish", "D-q2"),
        ("checkpoint", "D-q2"),
    ]


async def test_add_draft_is_idempotent_and_checks_input(make: Callable[..., Harness]) -> None:
    """Re-adding returns the stored draft unchanged; bad ids and options are refused."""
    h = make()
    first = await h.worker.add_draft("D-same", {"mode": "FREE"})
    again = await h.worker.add_draft("D-same", {"mode": "PROMOTED"}, "OTP")
    assert again == first
    with pytest.raises(InputRejected):
        await h.worker.add_draft(" spaced ")
    with pytest.raises(InputRejected):
        await h.worker.add_draft("D-x", {"colour": "red"})
    with pytest.raises(InputRejected):
        await h.worker.add_draft("D-x", checkpoint="SMS")
    assert [x.draft_id for x in h.worker.drafts()] == ["D-same"]


# --- restarts: a new worker on the same store resumes each intermediate state ----


def seed(h: Harness, draft_id: str, *events: d.Event, use: Candidate | None = None) -> Draft:
    """Leave the store as a killed worker would have: the draft after these events."""
    now = datetime.now(UTC)
    draft = h.records.insert_draft(d.new_draft(ACCOUNT, draft_id, now))
    for event in events:
        moved = d.advance(draft, event, now)
        h.records.save_transition(
            draft, moved, event, use=use if isinstance(event, d.Submit) else None
        )
        draft = moved
    return draft


async def test_restart_in_publishing_resends_with_the_same_key(
    make: Callable[..., Harness],
) -> None:
    """A publish that reached postpress before the crash is replayed, not repeated."""
    h = make()
    h.auto_mail = False
    seed(h, "D-rp", d.StartPublish("key-publish-1"))
    await h.client.publish("D-rp", idempotency_key="key-publish-1")  # sent, answer lost
    h.worker = h.new_worker()
    h.auto_mail = True
    h.start()
    draft = await h.reaches("D-rp", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    publishes = [r for r in h.sim.requests if r.endpoint == "publish"]
    assert [(r.idempotency_key, r.outcome) for r in publishes] == [
        ("key-publish-1", "answered"),
        ("key-publish-1", "replayed"),
    ]
    assert len(h.mails("D-rp")) == 1


async def test_restart_in_publishing_before_the_send(make: Callable[..., Harness]) -> None:
    """A publish committed but never sent goes out after the restart under the stored key."""
    h = make()
    seed(h, "D-rp0", d.StartPublish("key-publish-0"))
    h.worker = h.new_worker()
    h.start()
    draft = await h.reaches("D-rp0", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    publishes = [r for r in h.sim.requests if r.endpoint == "publish"]
    assert [(r.idempotency_key, r.outcome) for r in publishes] == [("key-publish-0", "answered")]


async def test_replayed_publish_after_a_long_outage_keeps_the_first_send_as_since(
    make: Callable[..., Harness],
) -> None:
    """A checkpoint replayed 10 minutes after a crash still matches the first send's e-mail."""
    h = make()
    seeded = seed(h, "D-late", d.StartPublish("key-late"))
    await h.client.publish("D-late", idempotency_key="key-late")  # sent; the e-mail goes out
    later = seeded.updated_at + timedelta(minutes=10)
    h.worker = h.new_worker(clock=lambda: later + (datetime.now(UTC) - seeded.updated_at))
    h.start()
    draft = await h.reaches("D-late", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    assert h.inputs("D-late") == [h.mails("D-late")[0].code]
    replayed = [r.outcome for r in h.sim.requests if r.endpoint == "publish"]
    assert replayed == ["answered", "replayed"]


async def test_restart_in_awaiting_code_uses_stored_evidence(make: Callable[..., Harness]) -> None:
    """Evidence stored before the crash is matched again after it, with the original since."""
    h = make()
    h.auto_mail = False
    answer = await h.client.publish("D-ra")
    assert isinstance(answer, Checkpoint)
    seeded = seed(h, "D-ra", d.StartPublish("k"), d.GotCheckpoint("OTP", answer.job_id))
    await h.deliver()
    h.worker = h.new_worker()
    h.start()
    draft = await h.reaches("D-ra", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    assert h.inputs("D-ra") == [h.mails("D-ra")[0].code]
    history = h.records.draft_history(ACCOUNT, "D-ra")
    assert [e["event"] for e in history][-2:] == ["submit", "got_published"]
    assert seeded.since is not None


async def test_restart_after_code_timeout_passed_republishes(make: Callable[..., Harness]) -> None:
    """The code timeout counts from the stored since: a long-dead wait publishes again at once."""
    h = make(code_timeout=60)
    h.auto_mail = False
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    seed(h, "D-rt", d.StartPublish("k"), d.GotCheckpoint("OTP", "job", issued_at=long_ago))
    h.worker = h.new_worker()
    h.auto_mail = True
    h.start()
    draft = await h.reaches("D-rt", State.PUBLISHED, State.FAILED)
    assert (draft.state, draft.republishes) == (State.PUBLISHED, 1)


async def left_submitting(h: Harness, draft_id: str, key: str) -> str:
    """A store as a crash leaves it: the draft in submitting its OTP under ``key``; the code."""
    answer = await h.client.publish(draft_id)
    assert isinstance(answer, Checkpoint)
    code = h.mails(draft_id)[0].code
    assert code is not None
    evidence_id = h.evidence.add_evidence(
        ACCOUNT, StoredEvidence(0, datetime.now(UTC), code, None), datetime.now(UTC)
    )
    assert evidence_id is not None
    chosen = Candidate(evidence_id, "code", code)
    submit = d.Submit(key, chosen.hash, "code", "****")
    events = (d.StartPublish("k"), d.GotCheckpoint("OTP", answer.job_id), submit)
    seed(h, draft_id, *events, use=chosen)
    return code


async def test_restart_in_submitting_resends_the_same_input(make: Callable[..., Harness]) -> None:
    """A submit in flight at the crash is re-sent with the same input and key, and replayed."""
    h = make()
    h.auto_mail = False
    code = await left_submitting(h, "D-rs", "key-submit-1")
    await h.client.solve_checkpoint("D-rs", code, idempotency_key="key-submit-1")
    h.worker = h.new_worker()
    h.start()
    draft = await h.reaches("D-rs", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    solves = [r for r in h.sim.requests if r.endpoint == "checkpoint"]
    assert [(r.body["input"], r.idempotency_key, r.outcome) for r in solves] == [
        (code, "key-submit-1", "answered"),
        (code, "key-submit-1", "replayed"),
    ]


async def test_restart_in_submitting_before_the_send(make: Callable[..., Harness]) -> None:
    """A submit committed but never sent is sent after the restart; the code stays used."""
    h = make()
    h.auto_mail = False
    code = await left_submitting(h, "D-rs2", "key-submit-2")
    h.worker = h.new_worker()
    h.start()
    draft = await h.reaches("D-rs2", State.PUBLISHED, State.FAILED)
    assert draft.state is State.PUBLISHED
    assert h.inputs("D-rs2") == [code]
    since = datetime.now(UTC) - timedelta(days=1)
    used = input_hash(code)
    assert h.evidence.used_inputs(ACCOUNT, [used], since) == {used}


async def test_stop_returns_promptly_while_waiting(make: Callable[..., Harness]) -> None:
    """run() returns soon after stop is set, even with a draft waiting for its e-mail."""
    h = make()
    h.auto_mail = False
    h.start()
    await h.worker.add_draft("D-stop")
    await h.reaches("D-stop", State.AWAITING_CODE)
    h.stop.set()
    assert h.task is not None
    await asyncio.wait_for(h.task, 2.0)
    waiting = h.worker.draft("D-stop")
    assert waiting is not None
    assert waiting.state is State.AWAITING_CODE
    assert waiting.since is not None


async def test_other_accounts_go_on_when_one_is_held(make: Callable[..., Harness]) -> None:
    """One account's credential error holds only that account; another publishes as usual."""
    broken = make("acc_broken")
    healthy = make("acc_healthy")
    broken.sim.script("D-b1", Script(faults=(Fault("errors/account_restricted"),)))
    broken.start()
    healthy.start()
    await broken.worker.add_draft("D-b1")
    await healthy.worker.add_draft("D-h1")
    assert (await broken.reaches("D-b1", State.HELD)).error == "errors/account_restricted"
    assert (await healthy.reaches("D-h1", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert healthy.worker.account_error is None
    assert [x.draft_id for x in healthy.worker.drafts()] == ["D-h1"]


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (Script(faults=(Fault("errors/resource_not_found"),)), "errors/resource_not_found"),
        (Script(faults=(Fault(body="<html>oops</html>", status=200),)), "protocol_error"),
    ],
    ids=["not_found", "unreadable_answer"],
)
async def test_draft_errors_fail_only_that_draft(
    make: Callable[..., Harness], script: Script, error: str
) -> None:
    """A draft error or an unreadable answer fails the draft, not the account."""
    h = make()
    h.sim.script("D-bad", script)
    h.start()
    await h.worker.add_draft("D-bad")
    await h.worker.add_draft("D-next")
    assert (await h.reaches("D-bad", State.FAILED)).error == error
    assert (await h.reaches("D-next", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert h.worker.account_error is None


async def test_already_performed_counts_as_published(make: Callable[..., Harness]) -> None:
    """422 action_already_performed on publish: the draft is published (idempotent success)."""
    h = make()
    h.sim.script("D-done", Script(already_published=True))
    h.start()
    await h.worker.add_draft("D-done")
    draft = await h.reaches("D-done", State.PUBLISHED, State.FAILED)
    assert (draft.state, draft.error) == (State.PUBLISHED, None)


# --- retry: only an explicit request moves a failed draft ---------------------------


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ((Fault("errors/resource_not_found"),), "errors/resource_not_found"),
        ((Fault(body="<html>oops</html>", status=200),), "protocol_error"),
    ],
    ids=["draft_error", "unreadable_answer"],
)
async def test_retry_requeues_a_failed_draft_until_published(
    make: Callable[..., Harness], faults: tuple[Fault, ...], error: str
) -> None:
    """A failed draft stays failed until add_draft(retry=True) queues it afresh, then publishes."""
    h = make()
    h.sim.script("D-again", Script(faults=faults))
    h.start()
    await h.worker.add_draft("D-again")
    failed = await h.reaches("D-again", State.FAILED)
    assert failed.error == error
    assert await h.worker.add_draft("D-again") == failed  # without retry: unchanged
    with capture_logs() as logs:
        queued = await h.worker.add_draft("D-again", retry=True)
    assert (queued.state, queued.error, queued.error_detail) == (State.QUEUED, None, None)
    assert queued.created_at == failed.created_at
    [moved] = [e for e in logs if e["event"] == "draft_transition"]
    assert (moved["transition"], moved["from_state"], moved["to_state"]) == (
        "retry",
        "failed",
        "queued",
    )
    draft = await h.reaches("D-again", State.PUBLISHED, State.FAILED)
    assert (draft.state, draft.error, draft.republishes) == (State.PUBLISHED, None, 0)
    history = h.records.draft_history(ACCOUNT, "D-again")
    events = [e["event"] for e in history]
    assert events[:3] == ["added", "start_publish", "fail"]
    assert events[3:] == ["retry", "start_publish", "got_checkpoint", "submit", "got_published"]
    assert history[3]["detail"] == f"retry requested after {error}"
    publishes = [r for r in h.sim.requests if r.endpoint == "publish" and r.outcome != "fault"]
    assert len(publishes) == 1


async def test_retry_leaves_a_published_or_active_draft_unchanged(
    make: Callable[..., Harness],
) -> None:
    """retry=True on a draft that did not fail is a no-op: no history line, no publish call."""
    h = make()
    h.start()
    await h.worker.add_draft("D-done")
    published = await h.reaches("D-done", State.PUBLISHED, State.FAILED)
    assert published.state is State.PUBLISHED
    h.auto_mail = False
    await h.worker.add_draft("D-wait")
    waiting = await h.reaches("D-wait", State.AWAITING_CODE)
    sent = len(h.sim.requests)
    assert await h.worker.add_draft("D-done", retry=True) == published
    assert await h.worker.add_draft("D-wait", retry=True) == waiting
    assert len(h.sim.requests) == sent
    assert "retry" not in [e["event"] for e in h.records.draft_history(ACCOUNT, "D-done")]
    assert "retry" not in [e["event"] for e in h.records.draft_history(ACCOUNT, "D-wait")]


# --- the whole mail path: Dovecot, the real watcher, after_use ---------------------


@pytest.mark.dovecot
async def test_through_a_real_mailbox_with_after_use(dovecot: Dovecot, tmp_path: Path) -> None:
    """Mail APPENDed to Dovecot reaches the worker via the watcher; used ones get \\Seen."""
    settings = settings_for(
        dovecot,
        tmp_path,
        account_id=ACCOUNT,
        api_key=API_KEY,
        mail_after_use="seen",
        imap_idle_interval=5,
    )
    simulator = Simulator(
        api_key=API_KEY, mailbox=MailTarget.from_settings(settings), authserv_id=AUTHSERV
    )
    simulator.script("D-imap", Script(checkpoints=("EMAIL_VERIFICATION", "OTP"), decoy=True))
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    settings = settings.model_copy(update={"api_base_url": str(server.make_url("/v1"))})
    store = Store(settings.state_db)
    client = PostpressClient.from_settings(settings)

    async def hand_over(mail: IncomingMail) -> None:
        await worker.on_mail(mail)  # bound below, before the watcher runs

    watcher = MailboxWatcher(settings, store, hand_over)
    worker = AccountWorker(settings, store, client, after_use=watcher.after_use)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(watcher.run(stop)), asyncio.create_task(worker.run(stop))]
    try:
        await asyncio.wait_for(watcher.watching.wait(), WAIT)
        await worker.add_draft("D-imap")
        async with asyncio.timeout(WAIT):
            while not _seen_count(dovecot, 2):  # noqa: ASYNC110 - Dovecot's flags have no event
                await asyncio.sleep(0.05)
        draft = worker.draft("D-imap")
        assert draft is not None
        assert draft.state is State.PUBLISHED
        uids = dovecot.uids()
        assert len(uids) == 4  # two genuine e-mails, two decoys
        assert sum("\\Seen" in dovecot.flags(uid) for uid in uids) == 2
        genuine = [m for _, m in simulator.mails if m.genuine]
        assert [r.body["input"] for r in simulator.requests if r.endpoint == "checkpoint"] == [
            genuine[0].link,
            genuine[1].code,
        ]
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        await client.close()
        await server.close()
        store.close()


def _seen_count(server: Dovecot, wanted: int) -> bool:
    """Whether ``wanted`` messages carry \\Seen (the decoys must stay unseen)."""
    seen = [uid for uid in server.uids() if "\\Seen" in server.flags(uid)]
    return len(seen) >= wanted


async def test_on_mail_never_raises(make: Callable[..., Harness]) -> None:
    """Garbage bytes and a store that fails are each logged as one line; nothing is raised."""
    h = make()
    with capture_logs() as logs:
        await h.worker.on_mail(IncomingMail(7, 1, b"\x00\xff not a mail \r\n\r\n", True, None))
        h.store.close()  # every write now fails
        genuine = compose("OTP", "bot@example.test", datetime.now(UTC), authserv_id=AUTHSERV)
        await h.worker.on_mail(IncomingMail(7, 2, genuine.raw, True, None))
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("mail_rejected", "info"),
        ("mail_handling_failed", "error"),
    ]
    h.store = Store(h.settings.state_db)  # for the fixture's cleanup


async def test_hooks_hear_results_errors_and_each_inputs_latency(
    make: Callable[..., Harness],
) -> None:
    """WorkerHooks hear each submission's result, each API error type, and e-mail -> submit
    seconds measured for the input sent (its own e-mail, not the last one seen)."""
    shift = timedelta(0)
    results: list[str] = []
    errors: list[str] = []
    latencies: list[tuple[str, float]] = []
    h = make()
    hooks = WorkerHooks(
        changed=h._on_change,
        api_error=errors.append,
        submitted=results.append,
        latency=lambda form, seconds: latencies.append((form, seconds)),
    )
    h.worker = AccountWorker(
        h.settings, h.store, h.client, hooks=hooks, clock=lambda: datetime.now(UTC) + shift
    )
    h.sim.script("D-nf", Script(faults=(Fault("errors/resource_not_found"),)))
    h.auto_mail = False
    h.start()
    await h.worker.add_draft("D-nf")
    await h.worker.add_draft("D-lat")
    await h.reaches("D-lat", State.AWAITING_CODE)
    await h.halt()
    await h.deliver()  # stored now; the worker sends it only after the clock moved on
    shift = timedelta(seconds=42)
    h.start()
    assert (await h.reaches("D-lat", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
    assert (results, errors) == (["published"], ["errors/resource_not_found"])
    assert len(latencies) == 1
    form, seconds = latencies[0]
    assert form in ("code", "pin", "link")
    assert 42 <= seconds < 42 + WAIT


async def test_a_failing_hook_or_after_use_is_logged_and_the_draft_goes_on(
    make: Callable[..., Harness],
) -> None:
    """A metrics hook that raises is logged (on_change_failed, naming the hook and the draft);
    an after-use action that raises is logged (mail_after_use_failed); the draft publishes."""
    h = make()

    def changed_then_broken(draft: Draft) -> None:
        h._on_change(draft)
        raise RuntimeError("metrics down")

    async def broken_mailbox(_mail: IncomingMail) -> None:
        raise RuntimeError("mailbox gone")

    hooks = WorkerHooks(changed=changed_then_broken)
    h.worker = AccountWorker(h.settings, h.store, h.client, after_use=broken_mailbox, hooks=hooks)
    with capture_logs() as logs:
        h.start()
        await h.worker.add_draft("D-hooks")
        assert (await h.reaches("D-hooks", State.PUBLISHED, State.FAILED)).state is State.PUBLISHED
        async with asyncio.timeout(WAIT):  # the action runs in a task of its own, no event
            while not any(e["event"] == "mail_after_use_failed" for e in logs):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    failed = [e for e in logs if e["event"] == "on_change_failed"]
    assert {(e["hook"], e["draft_id"]) for e in failed} == {("changed_then_broken", "D-hooks")}
    assert len(failed) == len(h.records.draft_history(ACCOUNT, "D-hooks"))
    [used] = [e for e in logs if e["event"] == "mail_after_use_failed"]
    assert used["uid"] == h.uid
