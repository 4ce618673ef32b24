"""N accounts in one daemon against Dovecot: start-up, idle cost and a storm, as ratios to N=1.

For each N: a private Dovecot with one user per account (its limits raised
for N: ``mail_max_userip_connections``, the imap and imap-login process and
client limits), one ``otp-bot simulate`` process serving all N accounts (a
fleet: each by its own API key, account id and mailbox user) and one daemon
(``python -m otp_bot run``) with N env files.

Dovecot is set up as a server with many users would be (docs/scaling.md says
so): its login processes in the high-performance mode of Dovecot's "Login
processes" page (``service_count = 0``, one process per core kept ready,
instead of a fork per connection) and imap processes reused for up to 100
connections (its "Performance tuning" page). Every mailbox has been opened
once before the daemon starts (``warm``): a real mailbox exists already,
while a fresh test server would otherwise build each user's Maildir and
indexes inside the timed start-up.

Measured:

- start-up: process start to ``READY=1`` on our own notify socket, and the
  CPU seconds the daemon and Dovecot spent meanwhile (on a shared 2-core
  machine the wall time also carries whatever else runs);
- idle, 10 s after READY: RSS, CPU over 10 s, threads and descriptors;
- a storm: one draft per account handed over at once. e-mail -> submit is
  the simulator's record (its APPEND completion to the checkpoint request
  carrying the code): p50, p95 and max; total: first hand-over to the last
  checkpoint request (the simulator's record); daemon CPU per draft;
  Dovecot's CPU meanwhile (the simulator logs in for each APPEND); RSS and
  threads after the storm.

Beyond 128 IMAP processes a user's inotify instances run out
(``fs.inotify.max_user_instances``, default 128) and Dovecot falls back to
looking every 30 s; as root the bench raises the limit for the run and
restores it afterwards (otherwise it says so, and the mailboxes past the
limit see new mail up to 30 s late).

    .venv/bin/python bench/scale.py [N ...]      # default: 1 50 200 500

Prints one table and one JSON line; everything in it is measured in this run.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402 - after the path set-up above

from tests.dovecot import Dovecot, free_port  # noqa: E402

INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")
IDLE_WINDOW = 10.0
# The control API is never open: the bench's daemon and the bench share this token.
CONTROL_TOKEN = "scale-bench-control-token"
STORM_TIMEOUT = 600.0
POLL_EVERY = 1.0  # seconds between two "all published yet?" questions to the daemon


# --- the process we measure ------------------------------------------------------


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MB), CPU seconds (user+system), threads and descriptors of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "cpu_s": cpu_seconds(pid),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread, in ns precision (schedstat), not clock ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


@contextmanager
def inotify_raised(needed: int) -> Any:
    """Raise fs.inotify.max_user_instances for the run (root only), restore it after."""
    before = int(INOTIFY.read_text())
    if os.geteuid() != 0 or before >= needed:
        if before < needed:
            print(f"# not root: fs.inotify.max_user_instances stays {before}", file=sys.stderr)
        yield
        return
    INOTIFY.write_text(str(needed))
    try:
        yield
    finally:
        INOTIFY.write_text(str(before))


def dovecot_for(n: int) -> Dovecot:
    users = tuple(f"u{i}@example.test" for i in range(n))
    cores = len(os.sched_getaffinity(0))
    extra = (
        f"mail_max_userip_connections = {n + 100}",
        f"default_process_limit = {n + 200}",
        f"default_client_limit = {4 * n + 1000}",
        # Dovecot's high-performance login mode: long-lived imap-login
        # processes, one per core ready, instead of a fork per connection.
        f"service imap-login {{\n  service_count = 0\n  process_min_avail = {cores}\n}}",
        # One imap process per connection (client_limit 1, as Dovecot advises
        # for mail processes), reused for up to 100 connections after logout.
        f"service imap {{\n  process_limit = {n + 200}\n  service_count = 100\n}}",
        "mail_fsync = never",
    )
    return Dovecot(users=users, extra_config=extra).start()


def warm(server: Dovecot) -> None:
    """Open every user's INBOX once, as a mailbox in use has been: Dovecot creates
    a Maildir and its indexes at the first SELECT, which no daemon restart pays."""

    def one(user: str) -> None:
        client = server.client(user)
        try:
            client.select("INBOX")
        finally:
            client.logout()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, server.users))


def server_cpu_seconds(server: Dovecot) -> float:
    """CPU time of every Dovecot process, ended ones included (the master's children)."""
    sid = server.pid
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue  # a process that ended meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 14 and int(fields[3]) == sid:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def env_files(root: Path, server: Dovecot, n: int, api: str, control: str) -> list[Path]:
    files = []
    for i in range(n):
        path = root / f"acc{i}.env"
        path.write_text(
            f"OTP_BOT_ACCOUNT_ID=acc_{i}\nOTP_BOT_API_KEY=pp_scale_key_{i}\n"
            f"OTP_BOT_API_BASE_URL={api}\nOTP_BOT_IMAP_HOST={server.host}\n"
            f"OTP_BOT_IMAP_PORT={server.port}\nOTP_BOT_IMAP_USER={server.users[i]}\n"
            f"OTP_BOT_IMAP_PASSWORD={server.password}\nOTP_BOT_IMAP_SECURITY=none\n"
            f"OTP_BOT_STATE_DIR={root / 'state'}\nOTP_BOT_CONTROL_ADDR={control}\n"
            f"OTP_BOT_CONTROL_TOKEN={CONTROL_TOKEN}\n"
            "OTP_BOT_LOG_FORMAT=json\nOTP_BOT_IMAP_LOOKBACK=60\n"
        )
        files.append(path)
    return files


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "otp_bot", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(notify: socket.socket, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until READY=1 arrives on our notify socket."""
    started = time.monotonic()
    notify.settimeout(1.0)
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode} before READY")
        try:
            if b"READY=1" in notify.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
    raise RuntimeError(f"no READY=1 within {timeout:.0f} s")


# --- the storm --------------------------------------------------------------------


async def storm(control: str, admin: str, n: int) -> dict[str, Any]:
    """One draft per account at once; wait until all are published; the simulator's record."""
    timeout = aiohttp.ClientTimeout(total=STORM_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    auth = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=auth) as http:

        async def hand_over(i: int) -> None:
            body = {"draft_id": f"job-scale-{i}", "account_id": f"acc_{i}"}
            async with http.post(f"http://{control}/drafts", json=body) as reply:
                if reply.status not in (200, 202):
                    raise RuntimeError(f"POST /drafts: {reply.status} {await reply.text()}")

        started = time.time()
        await asyncio.gather(*(hand_over(i) for i in range(n)))
        accepted = time.time() - started
        while True:
            # Listing 500 drafts costs the daemon's loop about 60 ms: asked once a
            # second, not five times, so the bench does not slow what it measures.
            async with http.get(f"http://{control}/drafts?state=published") as reply:
                done = len(await reply.json())
            if done >= n or time.time() - started > STORM_TIMEOUT:
                break
            await asyncio.sleep(POLL_EVERY)  # polling the daemon's own answer, bounded above
        async with http.get(f"{admin}/_sim/mails") as reply:
            mails = await reply.json()
        async with http.get(f"{admin}/_sim/requests") as reply:
            requests = await reply.json()
    submits = [r["at"] for r in requests if r["endpoint"] == "checkpoint" and r.get("authorized")]
    return {
        "published": done,
        "accepted_s": accepted,
        # To the last code's checkpoint request, as the simulator recorded it.
        "total_s": (max(submits) if submits else time.time()) - started,
        "latency": email_to_submit(mails, requests),
    }


def email_to_submit(mails: list[dict[str, Any]], requests: list[dict[str, Any]]) -> list[float]:
    """Per draft: the checkpoint request carrying its code, minus the code's APPEND."""
    delivered: dict[tuple[str, str], float] = {}
    for mail in mails:
        if mail.get("genuine") and mail.get("delivered_at"):
            key = (mail["account_id"], mail["draft_id"])
            delivered.setdefault(key, min(mail["delivered_at"]))
    submitted: dict[tuple[str, str], float] = {}
    for request in requests:
        if request["endpoint"] == "checkpoint" and request.get("authorized"):
            submitted.setdefault((request["account_id"], request["draft_id"]), request["at"])
    return [submitted[key] - at for key, at in delivered.items() if key in submitted]


# --- one N ------------------------------------------------------------------------


def run_one(n: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"scale{n}-", dir="/tmp"))
    server = dovecot_for(n)
    warm(server)
    sim_port, control = free_port(), f"127.0.0.1:{free_port()}"
    api = f"http://127.0.0.1:{sim_port}/v1"
    files = env_files(root, server, n, api, control)
    flags = [arg for path in files for arg in ("--env-file", str(path))]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(root / "notify"))
    sim = start(["simulate", "--port", str(sim_port), *flags], root / "sim.log", {})
    daemon = None
    failed = True  # until measured: then the logs and state go, else they stay for a look
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # "postpress simulator listening on ..."
        daemon = start(
            ["run", *flags], root / "daemon.log", {"NOTIFY_SOCKET": str(root / "notify")}
        )
        server_before = server_cpu_seconds(server)
        startup = wait_ready(notify, daemon, 300)
        startup_cpu = cpu_seconds(daemon.pid)
        startup_server_cpu = server_cpu_seconds(server) - server_before
        time.sleep(2)  # let catch-up chatter settle before the idle window
        before = proc_stats(daemon.pid)
        time.sleep(IDLE_WINDOW)
        idle = proc_stats(daemon.pid)
        server_before = server_cpu_seconds(server)
        result = asyncio.run(storm(control, f"http://127.0.0.1:{sim_port}", n))
        after = proc_stats(daemon.pid)
        storm_server_cpu = server_cpu_seconds(server) - server_before
        latency = sorted(result.pop("latency"))
        failed = False
        return {
            "n": n,
            "startup_s": startup,
            "startup_cpu_s": startup_cpu,
            "startup_server_cpu_s": startup_server_cpu,
            "idle_rss_mb": idle["rss_mb"],
            "idle_cpu_pct": 100 * (idle["cpu_s"] - before["cpu_s"]) / IDLE_WINDOW,
            "threads": idle["threads"],
            "fds": idle["fds"],
            "storm_rss_mb": after["rss_mb"],
            "storm_threads": after["threads"],
            "cpu_per_draft_ms": 1000 * (after["cpu_s"] - idle["cpu_s"]) / n,
            "storm_server_cpu_s": storm_server_cpu,
            "p50_s": statistics.median(latency) if latency else float("nan"),
            "p95_s": latency[min(len(latency) - 1, round(0.95 * (len(latency) - 1)))]
            if latency
            else float("nan"),
            "max_s": latency[-1] if latency else float("nan"),
            "measured": len(latency),
            **result,
        }
    finally:
        if daemon is not None:
            stop(daemon)
        stop(sim)
        notify.close()
        server.cleanup()
        if failed:
            print(f"# N={n}: logs and state kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


COLUMNS = [
    ("n", "N", "{:.0f}"),
    ("startup_s", "start s", "{:.2f}"),
    ("startup_cpu_s", "start CPU s", "{:.2f}"),
    ("startup_server_cpu_s", "Dovecot CPU s", "{:.2f}"),
    ("idle_rss_mb", "idle MB", "{:.0f}"),
    ("idle_cpu_pct", "idle CPU%", "{:.1f}"),
    ("threads", "threads", "{:.0f}"),
    ("fds", "fds", "{:.0f}"),
    ("p50_s", "p50 s", "{:.2f}"),
    ("p95_s", "p95 s", "{:.2f}"),
    ("max_s", "max s", "{:.2f}"),
    ("total_s", "storm s", "{:.1f}"),
    ("cpu_per_draft_ms", "CPU/draft ms", "{:.1f}"),
    ("storm_server_cpu_s", "storm Dovecot CPU s", "{:.1f}"),
    ("storm_rss_mb", "RSS after MB", "{:.0f}"),
    ("storm_threads", "threads after", "{:.0f}"),
    ("published", "published", "{:.0f}"),
]
RATIOS = ("startup_s", "idle_rss_mb", "p95_s", "cpu_per_draft_ms", "storm_rss_mb")


def table(rows: list[dict[str, Any]]) -> str:
    head = " | ".join(title for _key, title, _fmt in COLUMNS)
    lines = [head, "-" * len(head)]
    lines += [" | ".join(fmt.format(row[key]) for key, _t, fmt in COLUMNS) for row in rows]
    base = rows[0]
    lines.append("")
    lines.append(f"ratios to N={base['n']} (same run): " + ", ".join(RATIOS))
    for row in rows[1:]:
        ratios = [row[key] / base[key] if base[key] else float("nan") for key in RATIOS]
        lines.append(f"N={row['n']}: " + "  ".join(f"{r:.2f}x" for r in ratios))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1, 50, 200, 500]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the simulator's sockets
    rows = []
    with inotify_raised(max(sizes) + 256):
        for n in sizes:
            print(f"# N={n} ...", file=sys.stderr, flush=True)
            rows.append(run_one(n))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows))
    print(json.dumps({"scale": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
