"""The soak's seeded plan: each draft's simulator script and when each fault strikes.

The same seed gives the same scripts and the same schedule (what the bot does
in between still varies with the machine's timing).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# Faults a draft's script can carry, each with the plan's per-draft rate.
API_FAULTS = ("503", "504_after_accept", "429_retry_after", "slow_timeout", "slow_answer")
MAIL_FAULTS = ("mail_delayed", "mail_duplicated", "decoy")
KINDS = API_FAULTS + MAIL_FAULTS
# An e-mail that lands only after the bot gave up on it and published again:
# it must never be submitted for a later checkpoint. Rarer than the others,
# since its draft holds the account up for CODE_TIMEOUT.
LATE = "mail_late"
# Mail to a killed Dovecot is retried this long (an MTA's queue); above any outage.
MAIL_RETRY = 60.0
# The daemon's OTP_BOT_CODE_TIMEOUT: above the longest prompt mail (delay 6 s,
# plus a Dovecot outage, a reconnect and a daemon restart); a "mail_late"
# e-mail comes after it, so the bot publishes again before the old one lands.
CODE_TIMEOUT = 25.0


@dataclass(frozen=True)
class FaultPlan:
    """How many faults of each kind, and how densely; ``short()`` for the test suite."""

    dovecot_kills: int = 8
    daemon_kills: int = 12
    rate: float = 0.08  # each draft gets each fault kind with this probability ...
    late_rate: float = 0.03  # ... but mail_late, which holds the account up (0: none)
    verify_rate: float = 0.15  # an EMAIL_VERIFICATION checkpoint (link, then PIN)
    chain_rate: float = 0.15  # EMAIL_VERIFICATION then OTP
    submit_window: float = 240.0  # seconds over which the drafts are handed over
    outage: tuple[float, float] = (0.5, 4.0)  # Dovecot stays dead this long
    daemon_down: tuple[float, float] = (0.0, 2.0)  # the daemon stays dead this long
    every_kind: bool = True  # the first drafts get one kind each, so each kind occurs
    # SIGHUPs, each after one account's env file changed (that account restarts
    # mid-flight; the others are kept).
    reloads: int = 8
    # The first two accounts read ONE mailbox, each with its own recipient address.
    shared_pair: bool = True

    @classmethod
    def short(cls) -> FaultPlan:
        return cls(dovecot_kills=1, daemon_kills=2, reloads=2, rate=0.15, submit_window=16.0)

    @property
    def kinds(self) -> tuple[str, ...]:
        return (*KINDS, LATE) if self.late_rate > 0 else KINDS

    def rate_of(self, kind: str) -> float:
        return self.late_rate if kind == LATE else self.rate


@dataclass(frozen=True)
class Event:
    at: float  # seconds from the start of the drive
    kind: str  # draft | dovecot_kill | daemon_kill | reload
    draft_id: str = ""
    account_id: str = ""
    pause: float = 0.0  # how long the killed process stays dead


@dataclass
class Schedule:
    account_ids: tuple[str, ...]
    users: tuple[str, ...]  # each account's mailbox (the shared pair: the same one)
    events: list[Event] = field(default_factory=list)
    scripts: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)  # fault kind -> drafts with it

    def scripts_of(self, account_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(d, s) for d, (a, s) in self.scripts.items() if a == account_id]

    def injected(self) -> dict[str, int]:
        kinds = ("dovecot_kill", "daemon_kill", "reload")
        kills = {k: sum(e.kind == k for e in self.events) for k in kinds}
        return {**kills, **self.kinds}


def plan(drafts: int, accounts: int, seed: int, faults: FaultPlan) -> Schedule:
    """Scripts for every draft and the time-ordered events of one soak."""
    rng = random.Random(seed)
    shared = faults.shared_pair and accounts >= 2
    schedule = Schedule(
        tuple(f"acc_soak_{n}" for n in range(accounts)),
        tuple(f"soak{0 if shared and n < 2 else n}@example.test" for n in range(accounts)),
    )
    kinds_used = faults.kinds
    guaranteed = rng.sample(kinds_used, len(kinds_used)) if faults.every_kind else []
    window = faults.submit_window
    for n in range(drafts):
        draft_id, account_id = f"soak-{seed}-{n:03d}", schedule.account_ids[n % accounts]
        kinds = [k for k in kinds_used if rng.random() < faults.rate_of(k)]
        if n < len(guaranteed) and guaranteed[n] not in kinds:
            kinds.append(guaranteed[n])
        for kind in kinds:
            schedule.kinds[kind] = schedule.kinds.get(kind, 0) + 1
        schedule.scripts[draft_id] = (account_id, _script(rng, kinds, faults))
        at = window * n / max(drafts, 1) + rng.uniform(0, window / max(drafts, 1))
        schedule.events.append(Event(at, "draft", draft_id, account_id))
    for kind, count, down in (
        ("dovecot_kill", faults.dovecot_kills, faults.outage),
        ("daemon_kill", faults.daemon_kills, faults.daemon_down),
    ):
        for _ in range(count):
            at = rng.uniform(2.0, window * 1.1)
            schedule.events.append(Event(at, kind, pause=rng.uniform(*down)))
    for _ in range(faults.reloads):
        at = rng.uniform(2.0, window * 1.1)
        schedule.events.append(Event(at, "reload", account_id=rng.choice(schedule.account_ids)))
    schedule.events.sort(key=lambda e: e.at)
    return schedule


def _script(rng: random.Random, kinds: list[str], faults: FaultPlan) -> dict[str, Any]:
    shape = rng.random()
    checkpoints = ["OTP"]
    if shape < faults.chain_rate:
        checkpoints = ["EMAIL_VERIFICATION", "OTP"]
    elif shape < faults.chain_rate + faults.verify_rate:
        checkpoints = ["EMAIL_VERIFICATION"]
    script: dict[str, Any] = {"checkpoints": checkpoints, "mail_retry": MAIL_RETRY, "faults": []}
    for kind in kinds:
        _add_fault(rng, kind, script)
    return script


def _add_fault(rng: random.Random, kind: str, script: dict[str, Any]) -> None:
    endpoint = rng.choice(["publish", "checkpoint"])
    if kind == "503":
        script["faults"].append({"type": "errors/service_unavailable", "endpoint": endpoint})
    elif kind == "429_retry_after":
        fault = {"type": "errors/rate_limited", "status": 429, "retry_after": "1"}
        script["faults"].append({**fault, "endpoint": endpoint})
    elif kind == "slow_timeout":  # slower than the client's timeout: it gives up and retries
        fault = {"type": "errors/request_timeout", "delay": round(rng.uniform(3.5, 5.0), 2)}
        script["faults"].append({**fault, "endpoint": endpoint})
    elif kind == "504_after_accept":
        script.update(timeout_after_accept=1, timeout_endpoint=endpoint)
    elif kind == "slow_answer":  # a real answer, slow but within the client's timeout
        script.update(slow_answers=rng.randint(1, 2), slow_delay=round(rng.uniform(0.5, 2.5), 2))
    elif kind == "mail_delayed":
        script["mail_delay"] = round(rng.uniform(0.5, 6.0), 2)
    elif kind == "mail_duplicated":
        script.update(mail_duplicates=rng.randint(1, 2), duplicate_delay=rng.uniform(0, 3))
    elif kind == LATE:  # the bot times out and publishes again; then this one lands
        script.update(late_mails=1, late_delay=round(CODE_TIMEOUT + rng.uniform(1.0, 10.0), 2))
    elif kind == "decoy":
        script.update(decoy=True, decoy_style=rng.choice(["lookalike", "unsigned"]))
