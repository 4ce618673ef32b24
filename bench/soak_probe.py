"""The soak's observer: samples /proc and the state files during the run, judges at the end.

Every process the soak started (the daemon, the simulators, Dovecot and their
children, found by session id) has its argv and environment scanned for the
known secrets while it runs; the state database's files are scanned as bytes
during the run and at the end; the log files at the end.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soak_truth import count_hits, judge, percentile, raw_inputs_in_log

from tests.harness import Daemon, Stack

if TYPE_CHECKING:
    from soak import SoakReport
    from soak_plan import Schedule

# The state database is scanned at most this often during the run.
DB_SCAN_EVERY = 2.0


def rss_kb(daemon: Daemon) -> int:
    """The daemon's resident set size (VmRSS) in kB, 0 when it is not running."""
    if daemon.popen is None:
        return 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{daemon.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Probe:
    def __init__(self, stack: Stack, secrets: list[str]) -> None:
        self.stack = stack
        self.secrets = secrets
        self.hits: dict[str, int] = {}  # where -> count
        self.samples = 0
        self.processes_seen: set[int] = set()
        self.scanned: dict[str, int] = {}  # kind -> bytes scanned (the audit is not vacuous)
        self._db_scanned = 0.0

    # --- during the run -----------------------------------------------------------

    def sample(self) -> None:
        """Scan argv and environment of every process we started, and now and then the db."""
        self.samples += 1
        for daemon in self.stack.daemons:  # drain STATUS/WATCHDOG datagrams: a full socket
            daemon.notifications(0)  # buffer would make the daemon's sd_notify fail
        for pid in self._our_pids():
            self.processes_seen.add(pid)
            for name in ("cmdline", "environ"):
                with contextlib.suppress(OSError):
                    self._hit(f"/proc/*/{name}", Path(f"/proc/{pid}/{name}").read_bytes())
        if time.monotonic() - self._db_scanned > DB_SCAN_EVERY:
            self._db_scanned = time.monotonic()
            self._scan_state()

    def _our_pids(self) -> list[int]:
        sessions = {p.popen.pid for p in self._procs() if p.popen is not None}
        dovecot = self.stack.dovecot
        conf = str(dovecot.root / "dovecot.conf").encode() if dovecot else b"\0"
        table: list[tuple[int, int]] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                sid = int(stat.rsplit(")", 1)[1].split()[3])
                table.append((int(entry.name), sid))
                if conf in (entry / "cmdline").read_bytes():
                    sessions.add(sid)
        return [pid for pid, sid in table if sid in sessions]

    def _procs(self) -> list[Any]:
        return [*self.stack.daemons, *(a.simulator for a in self.stack.accounts.values())]

    def _scan_state(self) -> None:
        state = self.stack.root / "state"
        for path in sorted(state.glob("otp-bot.sqlite3*")) if state.is_dir() else []:
            with contextlib.suppress(OSError):
                self._hit(f"state/{path.name}", path.read_bytes())

    def _hit(self, where: str, blob: bytes) -> None:
        kind = "proc" if where.startswith("/proc") else "state" if "/" in where else "logs"
        kind = f"audit_bytes_{kind}"
        self.scanned[kind] = self.scanned.get(kind, 0) + len(blob)
        found = count_hits(blob, self.secrets)
        if found:
            self.hits[where] = self.hits.get(where, 0) + found

    # --- at the end -------------------------------------------------------------

    def judge(
        self,
        report: SoakReport,
        handed: dict[str, str],
        final: dict[str, dict[str, Any]],
        schedule: Schedule,
    ) -> None:
        """Fill the report from the simulators' record, the final drafts and the files."""
        self._scan_state()
        for log in sorted(self.stack.root.glob("*.log")):
            self._hit(log.name, log.read_bytes())
        report.leaked, report.leak_places = sum(self.hits.values()), dict(self.hits)
        report.observed = {"processes_scanned": len(self.processes_seen), **self.scanned}
        # Positive control: the env files hold every secret, so the scan must find them there.
        envs = b"".join(path.read_bytes() for path in self.stack.root.glob("*.env"))
        report.observed["audit_control_hits_in_env_files"] = count_hits(envs, self.secrets)
        latencies: list[float] = []
        codes: list[str] = []
        links: list[str] = []
        for account_id, account in self.stack.accounts.items():
            sim = account.simulator
            sim.admin("POST", "/_sim/wait-for-mail")  # late duplicates land before judging
            requests, mails = sim.admin("GET", "/_sim/requests"), sim.admin("GET", "/_sim/mails")
            truth = judge(requests, mails)
            report.reused += len(truth.reused)
            report.foreign += len(truth.foreign)
            report.submissions += len(truth.submissions)
            report.offences += [f"reused {line}" for line in truth.reused]
            report.offences += [f"foreign {line}" for line in truth.foreign]
            latencies += truth.latencies
            codes += [m["code"] for m in mails]
            links += [m["link"] for m in mails if m["link"]]
            _observe(report.observed, requests, mails)
            mine = [d for d, a in handed.items() if a == account_id]
            self._outcomes(report, mine, final, sim)
        report.lost += len(schedule.scripts) - len(handed)  # never handed: over the bound
        report.latency_p50_s = percentile(latencies, 50)
        report.latency_p95_s = percentile(latencies, 95)
        report.latency_max_s = max(latencies, default=None)
        daemon_logs = "".join(d.log.read_text(errors="replace") for d in self.stack.daemons)
        report.unmasked = raw_inputs_in_log(daemon_logs, codes, links)
        _resumed(report.observed, daemon_logs)

    def _outcomes(
        self, report: SoakReport, drafts: list[str], final: dict[str, dict[str, Any]], sim: Any
    ) -> None:
        for draft_id in drafts:
            draft = final.get(draft_id)
            if draft is None or draft["state"] not in ("published", "failed"):
                report.lost += 1
                state = draft["state"] if draft else "missing"
                report.offences.append(f"lost {draft_id}: {state}")
                continue
            published = draft["state"] == "published"
            if published:
                report.published += 1
            else:
                reason = str(draft.get("error"))
                report.failed[reason] = report.failed.get(reason, 0) + 1
            if sim.admin("GET", f"/_sim/drafts/{draft_id}")["published"] != published:
                report.disagreements += 1
                report.offences.append(f"disagree {draft_id}: the bot says {draft['state']}")

    def keep_logs_if(self, wanted: Callable[[], bool]) -> None:
        """Copy the logs and the state away before the stack is removed, when ``wanted()``."""
        if not wanted():
            return
        kept = Path(tempfile.mkdtemp(prefix="soak-kept-", dir="/tmp"))
        for path in self.stack.root.glob("*.log"):
            shutil.copy(path, kept)
        if (self.stack.root / "state").is_dir():
            shutil.copytree(self.stack.root / "state", kept / "state")
        if self.stack.dovecot is not None:
            with contextlib.suppress(OSError):
                shutil.copy(self.stack.dovecot.root / "dovecot.log", kept)
        print(f"soak: logs and state kept in {kept}", file=sys.stderr)


def _observe(observed: dict[str, int], requests: list[Any], mails: list[Any]) -> None:
    """Count the faults the simulator really served and the mail it really sent."""

    def add(key: str, count: int = 1) -> None:
        observed[key] = observed.get(key, 0) + count

    for request in requests:
        if request["outcome"] == "fault":
            add(f"fault_{request['status']}")
        elif request["outcome"] in ("timeout_after_accept", "replayed"):
            add(request["outcome"])
        add("api_requests")
    for mail in mails:
        add("mails_genuine" if mail["genuine"] else "mails_decoy")
        add("mail_appends_failed", mail.get("failed_appends", 0))
        add("mail_duplicate_appends", max(0, len(mail.get("delivered_at", [])) - 1))


def _resumed(observed: dict[str, int], logs: str) -> None:
    """Count the drafts a restarted daemon found under way, by state (where the kills hit),
    and how the SIGHUP reloads went (done, rejected, mail for nobody on the shared mailbox)."""
    for event in ("reload_done", "reload_rejected", "reload_failed", "mail_not_addressed"):
        observed[event] = logs.count(f'"event": "{event}"')
    for line in logs.splitlines():
        if '"draft_resumed"' in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                key = f"resumed_{json.loads(line)['state']}"
                observed[key] = observed.get(key, 0) + 1
