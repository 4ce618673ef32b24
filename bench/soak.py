"""Soak: drafts through the real daemon, Dovecot and simulators, with random faults injected.

One private Dovecot, one ``otp-bot simulate`` process per account (its record
survives daemon kills) and one daemon (``python -m otp_bot run``) for all the
accounts. Drafts are handed to the daemon over the run's first part while a
seeded schedule kills Dovecot (SIGKILL of its process group, restarted after a
short outage), SIGKILLs the daemon (restarted on the same state) and changes
one account's env file then sends SIGHUP (that account restarts mid-flight).
The first two accounts share one mailbox, each with its own
OTP_BOT_MAIL_RECIPIENTS, so a code submitted for the wrong account shows as
foreign. Each
draft's simulator script adds API faults (503, 504 after the request was
accepted, 429 with Retry-After, answers slower than the client's timeout,
slow real answers) and mail faults (delayed, duplicated, a decoy first,
late: landing only after the bot gave up on it and published again); mail
to a killed Dovecot is retried as an MTA's queue would.

The verdicts come from ground truth (``soak_truth``): the simulators' record
of every request and e-mail, the log files, the state database's bytes and
``/proc/*/cmdline`` of every process started, sampled during the run.

    .venv/bin/python bench/soak.py --drafts 200 --accounts 2 [--seed N] [--short]

Prints a table and one JSON line; exits 1 unless lost, reused, foreign
inputs, leaked secrets and unmasked codes are all 0 and every draft ended.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from soak_plan import CODE_TIMEOUT, FaultPlan, Schedule, plan  # noqa: E402 - after the path set-up above
from soak_probe import Probe, rss_kb  # noqa: E402

from otp_bot.control.client import ControlClient, ControlError  # noqa: E402
from tests import dovecot as dc  # noqa: E402
from tests.harness import Daemon, Stack  # noqa: E402

__all__ = ["FaultPlan", "SoakReport", "main", "run_soak"]

# Short timeouts so a soak ends in minutes; each still above what the faults need.
DAEMON_SETTINGS = {
    "OTP_BOT_API_TIMEOUT": "3",  # slow faults (4-5 s) time out, slow answers (<= 2.5 s) do not
    "OTP_BOT_API_RETRY_ATTEMPTS": "10",
    "OTP_BOT_API_RETRY_MAX_TIME": "90",
    "OTP_BOT_CODE_TIMEOUT": str(CODE_TIMEOUT),  # see soak_plan
    # Below the code timeout, as production's 120 s is below its 900 s: an e-mail
    # that lands after its draft published again is then older than the skew
    # window (with a skew above the code timeout no rule can tell it apart).
    # One host dates everything here, so 10 s is ample.
    "OTP_BOT_CLOCK_SKEW": "10",
    "OTP_BOT_REPUBLISH_LIMIT": "2",
    "OTP_BOT_IMAP_TIMEOUT": "5",
    "OTP_BOT_IMAP_BACKOFF_MAX": "2",  # reconnect within ~2 s of Dovecot's return
    "OTP_BOT_HEALTH_MAX_STALE": "600",  # above the IDLE interval, as the daemon asks
}
TERMINAL = ("published", "failed")
# The control API is polled this often while the last drafts finish.
POLL = 0.5
# A hand-off to the daemon is retried this long (it may be restarting).
HANDOFF_TIMEOUT = 60.0


@dataclass
class SoakReport:
    """The soak's figures; ``ok`` when every must-be-zero count is zero."""

    drafts: int
    accounts: int
    seed: int
    duration_s: float = 0.0
    published: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # reason -> count
    reused: int = 0
    lost: int = 0
    foreign: int = 0
    leaked: int = 0
    leak_places: dict[str, int] = field(default_factory=dict)
    unmasked: dict[str, int] = field(default_factory=dict)  # log event.field -> count
    disagreements: int = 0  # the bot says published, the simulator does not (or back)
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_max_s: float | None = None
    submissions: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    observed: dict[str, int] = field(default_factory=dict)
    daemon_exit: int | None = None
    offences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        zero = (self.reused, self.lost, self.foreign, self.leaked, self.disagreements)
        return not any(zero) and not self.unmasked

    def table(self) -> str:
        rows = [
            ("drafts / accounts / seed", f"{self.drafts} / {self.accounts} / {self.seed}"),
            ("duration", f"{self.duration_s:.1f} s"),
            ("published", str(self.published)),
            ("failed", f"{sum(self.failed.values())} {self.failed or ''}".strip()),
            ("lost (must be 0)", str(self.lost)),
            ("inputs submitted twice (must be 0)", str(self.reused)),
            ("inputs not from the current e-mail (must be 0)", str(self.foreign)),
            ("secrets in logs/db/argv (must be 0)", f"{self.leaked} {self.leak_places or ''}"),
            ("raw codes/links in logs (must be 0)", f"{sum(self.unmasked.values())}"),
            ("bot vs simulator disagreements", str(self.disagreements)),
            ("daemon RSS start -> end", f"{self.rss_start_kb} kB -> {self.rss_end_kb} kB"),
            ("e-mail -> submit p50 / p95 / max", _latency(self)),
            ("faults injected", json.dumps(self.injected)),
            ("fault answers observed", json.dumps(self.observed)),
            ("daemon exit on SIGTERM", str(self.daemon_exit)),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines + [f"  ! {line}" for line in self.offences[:40]])

    def json_line(self) -> str:
        return json.dumps({"soak": {**asdict(self), "ok": self.ok}}, sort_keys=True)


def _latency(report: SoakReport) -> str:
    values = (report.latency_p50_s, report.latency_p95_s, report.latency_max_s)
    if None in values:
        return "n/a"
    p50, p95, top = (f"{v:.2f}" for v in values if v is not None)
    return f"{p50} / {p95} / {top} s over {report.submissions} submissions"


def run_soak(
    drafts: int, accounts: int, duration_limit: float, seed: int, faults: FaultPlan
) -> SoakReport:
    """Run one soak and judge it; every process started is stopped before returning."""
    schedule = plan(drafts, accounts, seed, faults)
    report = SoakReport(drafts, accounts, seed, injected=schedule.injected())
    keys = Keys.fresh(accounts)
    stack = Stack(root=Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp")))
    probe = Probe(stack, keys.all())
    started = time.monotonic()
    judged = False
    try:
        daemon = _start(stack, schedule, keys)
        probe.sample()
        report.rss_start_kb = rss_kb(daemon)
        handed = _drive(stack, daemon, schedule, probe, started + duration_limit)
        final = _finish(daemon, handed, probe, started + duration_limit)
        report.rss_end_kb = rss_kb(daemon)
        report.daemon_exit = daemon.stop()
        report.duration_s = time.monotonic() - started
        probe.judge(report, handed, final, schedule)
        judged = True
    finally:
        probe.keep_logs_if(lambda: not (judged and report.ok))
        stack.close()
    return report


@dataclass(frozen=True)
class Keys:
    """Distinctive known secrets, so the audit can look for them byte for byte."""

    api: tuple[str, ...]
    imap_password: str
    control_token: str

    @classmethod
    def fresh(cls, accounts: int) -> Keys:
        tag = secrets.token_hex(6)
        api = tuple(f"pp_live_SOAKKEY{n}_{tag}{secrets.token_hex(8)}" for n in range(accounts))
        return cls(api, f"imap-SOAKPW-{tag}{secrets.token_hex(8)}", f"ctl-SOAKTOK-{tag}")

    def all(self) -> list[str]:
        return [*self.api, self.imap_password, self.control_token]


def _start(stack: Stack, schedule: Schedule, keys: Keys) -> Daemon:
    users = tuple(dict.fromkeys(schedule.users))  # the shared pair's mailbox once
    stack.dovecot = dc.Dovecot(users=users, password=keys.imap_password).start()
    control = f"127.0.0.1:{dc.free_port()}"
    for n, (account_id, user) in enumerate(zip(schedule.account_ids, schedule.users, strict=True)):
        account = stack.add_account(
            account_id,
            user,
            control_addr=control,
            OTP_BOT_API_KEY=keys.api[n],
            OTP_BOT_CONTROL_TOKEN=keys.control_token,
            # Always set: it routes the shared pair's mail, and changes nothing alone.
            OTP_BOT_MAIL_RECIPIENTS=f"li-{account_id}@example.test",
            # One daemon, one state directory (the probe scans it): the shared pair
            # then shares one mailbox watcher as well.
            OTP_BOT_STATE_DIR=str(stack.root / "state"),
            **DAEMON_SETTINGS,
        )
        for draft_id, script in schedule.scripts_of(account_id):
            account.simulator.script(draft_id, **script)
    daemon = stack.daemon(*schedule.account_ids, token=keys.control_token)
    daemon.start_ready()
    return daemon


def _drive(
    stack: Stack, daemon: Daemon, schedule: Schedule, probe: Probe, deadline: float
) -> dict[str, str]:
    """Hand drafts over and inject the faults, each at its scheduled moment."""
    assert stack.dovecot is not None
    handed: dict[str, str] = {}  # draft_id -> account_id
    start = time.monotonic()
    for event in schedule.events:
        _sleep_until(start + event.at)  # the schedule's clock, not synchronisation
        if time.monotonic() > deadline:
            break
        if event.kind == "draft":
            _hand(daemon.client, event.draft_id, event.account_id)
            handed[event.draft_id] = event.account_id
        elif event.kind == "dovecot_kill":
            stack.dovecot.kill()
            time.sleep(event.pause)  # the outage itself
            stack.dovecot.start()
        elif event.kind == "daemon_kill":
            daemon.kill()
            time.sleep(event.pause)  # the daemon stays down this long
            daemon.start_ready()
        elif event.kind == "reload":
            _change(stack.accounts[event.account_id].env_file)
            daemon.signal(signal.SIGHUP)
        probe.sample()
    return handed


def _change(env_file: Path) -> None:
    """Toggle a setting that changes nothing the soak judges: the reload restarts the
    account (its worker stops after its current step and starts again)."""
    name = "OTP_BOT_API_RETRY_ATTEMPTS"
    lines = env_file.read_text().splitlines()
    current = next((line for line in lines if line.startswith(f"{name}=")), f"{name}=10")
    value = "11" if current.endswith("=10") else "10"
    kept = [line for line in lines if not line.startswith(f"{name}=")]
    env_file.write_text("\n".join([*kept, f"{name}={value}"]) + "\n")


def _hand(client: ControlClient, draft_id: str, account_id: str) -> None:
    give_up = time.monotonic() + HANDOFF_TIMEOUT
    while True:
        try:
            client.publish(draft_id, account_id=account_id)
        except ControlError:
            if time.monotonic() > give_up:
                raise
            time.sleep(POLL)  # the daemon is restarting: try again shortly
        else:
            return


def _finish(
    daemon: Daemon, handed: dict[str, str], probe: Probe, deadline: float
) -> dict[str, dict[str, Any]]:
    """Wait (bounded) until every handed draft is terminal; return the final drafts by id."""
    while True:
        final = {d["draft_id"]: d for d in daemon.client.drafts()}
        pending = [i for i in handed if final.get(i, {}).get("state") not in TERMINAL]
        probe.sample()
        if not pending or time.monotonic() > deadline:
            return final
        time.sleep(POLL)  # another process's state: polled


def _sleep_until(moment: float) -> None:
    left = moment - time.monotonic()
    if left > 0:
        time.sleep(left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafts", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--short", action="store_true", help="the <= 2 min version (make test)")
    parser.add_argument("--limit", type=float, default=None, help="seconds (default 540 / 100)")
    parser.add_argument(
        "--late-mail",
        type=float,
        default=None,
        metavar="RATE",
        help="share of drafts whose e-mail lands after the code timeout (default 0.03)",
    )
    args = parser.parse_args(argv)
    if not dc.available():
        print("soak: dovecot is not installed (make dovecot)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    faults = FaultPlan.short() if args.short else FaultPlan()
    if args.late_mail is not None:
        faults = replace(faults, late_rate=args.late_mail)
    limit = args.limit or (100.0 if args.short else 540.0)
    report = run_soak(args.drafts, args.accounts, limit, seed, faults)
    print(report.table())
    print(report.json_line())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
