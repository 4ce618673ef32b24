"""Real processes for the end-to-end tests and ``make demo``.

``Stack`` owns one private Dovecot, and for each account an env file, an
``otp-bot simulate`` process (postpress + LinkedIn's e-mails) and the daemon
(``python -m otp_bot run``) with a ``$NOTIFY_SOCKET`` of its own. Waiting is
done on real signals: ``READY=1`` on the notify socket, or polling the control
API and the simulator's admin API with a bounded deadline (these are other
processes: polling their state is how one synchronises with them).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from otp_bot.control.client import ControlClient
from tests import dovecot as dc

REPO = Path(__file__).resolve().parent.parent
# Polling period for another process's state: short, so tests stay fast.
POLL = 0.05
# Process start-up (Python imports, IMAP login) on a slow 2-core machine.
START_TIMEOUT = 20.0
# One CLI command, `otp-bot check` included (its API and IMAP calls have timeouts of their own).
CLI_TIMEOUT = 90.0

SMALL_TIMEOUTS = {
    "OTP_BOT_API_TIMEOUT": "3",
    "OTP_BOT_API_RETRY_ATTEMPTS": "5",
    "OTP_BOT_API_RETRY_MAX_TIME": "30",
    "OTP_BOT_IMAP_TIMEOUT": "5",
    "OTP_BOT_CODE_TIMEOUT": "30",
    "OTP_BOT_REPUBLISH_LIMIT": "2",
    "OTP_BOT_HEALTH_MAX_STALE": "60",
}


def wait_until(what: str, probe: Callable[[], Any], timeout: float, on_fail: str = "") -> Any:
    """Poll ``probe`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{on_fail}")
        time.sleep(POLL)


class Proc:
    """A child process in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.name, self.argv, self.log, self.env = name, argv, log, dict(env)
        self.popen: subprocess.Popen[bytes] | None = None
        self.to_terminal = False  # output to our terminal instead of the log (make demo)

    def start(self, stdout: int | None = None) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else (None if self.to_terminal else out),
                stderr=None if self.to_terminal else out,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout=timeout)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not end within 10 s."""
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self._close_pipe()

    def kill(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
            self._close_pipe()

    def _close_pipe(self) -> None:
        if self.popen is not None and self.popen.stdout is not None:
            self.popen.stdout.close()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ---\n" + "\n".join(text.splitlines()[-lines:])

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    out.append(item)
        return out


def child_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONHASHSEED")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def otp_bot(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m otp_bot ARGS`` as a user runs it: output captured, exit code not checked."""
    return subprocess.run(
        [sys.executable, "-m", "otp_bot", *map(str, args)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


class Simulator(Proc):
    """``otp-bot simulate`` on a free port, with its admin API."""

    base_url = ""

    def start(self, stdout: int | None = None) -> None:
        super().start(stdout=subprocess.PIPE)
        assert self.popen is not None
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], START_TIMEOUT)
        line = self.popen.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            self.kill()
            raise RuntimeError(f"simulator did not start: {line!r}\n{self.tail()}")
        self.base_url = line.rsplit(" ", 1)[1].strip()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        url = self.base_url.removesuffix("/v1") + path
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def script(self, draft_id: str, **script: Any) -> None:
        self.admin("POST", "/_sim/script", {"draft_id": draft_id, "script": script})

    def requests(self, draft_id: str | None = None, endpoint: str | None = None) -> list[Any]:
        return [
            r
            for r in self.admin("GET", "/_sim/requests")
            if draft_id in (None, r["draft_id"]) and endpoint in (None, r["endpoint"])
        ]

    def mails(self, draft_id: str | None = None) -> list[Any]:
        return [m for m in self.admin("GET", "/_sim/mails") if draft_id in (None, m["draft_id"])]


class Daemon(Proc):
    """``python -m otp_bot run`` for some accounts, with a notify socket."""

    def __init__(self, name: str, env_files: list[Path], log: Path, env: Mapping[str, str], *,
                 notify_path: Path, client: ControlClient) -> None:  # fmt: skip
        argv = [sys.executable, "-m", "otp_bot", "run"]
        for path in env_files:
            argv += ["--env-file", str(path)]
        super().__init__(name, argv, log, {**env, "NOTIFY_SOCKET": str(notify_path)})
        self.client = client
        self.notify_path = notify_path
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        self.messages: list[str] = []

    def notifications(self, timeout: float) -> list[str]:
        """Every notify datagram received so far, waiting up to ``timeout`` for one more."""
        ready, _, _ = select.select([self.notify], [], [], timeout)
        while ready:
            self.messages.append(self.notify.recv(4096).decode())
            ready, _, _ = select.select([self.notify], [], [], 0)
        return self.messages

    def wait_notified(self, key: str, timeout: float = START_TIMEOUT) -> str:
        """Wait for a datagram with ``KEY=...`` (e.g. ``READY=1``); return it."""
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.running  # checked first: its last datagrams are already queued
            self.notifications(0)
            for message in self.messages:
                if key in message.splitlines():
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or exited:
                raise AssertionError(f"{self.name}: no {key} within {timeout} s\n{self.tail()}")
            self.notifications(min(left, 0.5))

    def start_ready(self) -> None:
        self.messages.clear()
        self.start()
        self.wait_notified("READY=1")

    def draft(self, draft_id: str, account_id: str | None = None) -> dict[str, Any]:
        return dict(self.client.drafts(draft_id, account_id=account_id)[0])

    def wait_state(self, draft_id: str, *states: str, timeout: float = 30.0,
                   account_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Poll the control API until the draft is in one of ``states``."""

        def probe() -> dict[str, Any] | None:
            draft = self.draft(draft_id, account_id)
            return draft if draft["state"] in states else None

        return dict(wait_until(f"{draft_id} in {states}", probe, timeout, self.tail()))

    def close(self) -> None:
        self.stop()
        self.notify.close()


@dataclass
class Account:
    account_id: str
    env_file: Path
    control_addr: str
    simulator: Simulator

    @property
    def state_dir(self) -> Path:
        """Where the daemon keeps its state (and its control token, read by the client)."""
        return Path(dotenv_values(self.env_file)["OTP_BOT_STATE_DIR"] or "state")

    def env_with(self, path: Path, **values: str) -> Path:
        """A copy of its env file at ``path``, with these variables set to other values."""
        lines = [line for line in self.env_file.read_text().splitlines()
                 if line.split("=", 1)[0] not in values]  # fmt: skip
        path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")
        return path


@dataclass
class Stack:
    """Dovecot, and per account a simulator; then daemons over some accounts."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="e2e-", dir="/tmp")))
    dovecot: dc.Dovecot | None = None
    accounts: dict[str, Account] = field(default_factory=dict)
    daemons: list[Daemon] = field(default_factory=list)
    log_format: str = "json"

    def start_dovecot(self, users: Iterable[str]) -> dc.Dovecot:
        self.dovecot = dc.Dovecot(users=tuple(users)).start()
        return self.dovecot

    def add_account(self, account_id: str, user: str, *, password: str | None = None,
                    control_addr: str | None = None, **settings: str) -> Account:  # fmt: skip
        assert self.dovecot is not None
        control_addr = control_addr or f"127.0.0.1:{dc.free_port()}"
        values = {
            "OTP_BOT_ACCOUNT_ID": account_id,
            "OTP_BOT_API_KEY": f"pp_test_{account_id}_key",
            "OTP_BOT_API_BASE_URL": "http://127.0.0.1:9/v1",  # replaced once the sim listens
            "OTP_BOT_IMAP_HOST": self.dovecot.host,
            "OTP_BOT_IMAP_PORT": str(self.dovecot.port),
            "OTP_BOT_IMAP_USER": user,
            "OTP_BOT_IMAP_PASSWORD": password or self.dovecot.password,
            "OTP_BOT_IMAP_SECURITY": "none",
            # One state directory per account: one daemon may hold each (state lock).
            "OTP_BOT_STATE_DIR": str(self.root / f"state-{account_id}"),
            "OTP_BOT_CONTROL_ADDR": control_addr,
            "OTP_BOT_LOG_FORMAT": self.log_format,
            **SMALL_TIMEOUTS,
            **settings,
        }
        env_file = self.root / f"{account_id}.env"
        # The simulator delivers with the real password even when the daemon's is wrong.
        _write_env(env_file, {**values, "OTP_BOT_IMAP_PASSWORD": self.dovecot.password})
        sim = Simulator(
            f"simulator {account_id}",
            [sys.executable, "-m", "otp_bot", "simulate", "--port", "0", "--env-file",
             str(env_file)],
            self.root / f"sim-{account_id}.log",
            child_env(),
        )  # fmt: skip
        sim.start()
        _write_env(env_file, {**values, "OTP_BOT_API_BASE_URL": sim.base_url})
        account = Account(account_id, env_file, control_addr, sim)
        self.accounts[account_id] = account
        return account

    def start_account(
        self, account_id: str, user: str, **settings: str
    ) -> tuple[Simulator, Daemon]:
        """One account with its simulator and a daemon of its own, started and READY."""
        account = self.add_account(account_id, user, **settings)
        daemon = self.daemon(account_id)
        daemon.start_ready()
        return account.simulator, daemon

    def daemon(
        self, *account_ids: str, token: str | None = None, env_dir: Path | None = None
    ) -> Daemon:
        """A daemon for these accounts' env files, or (``env_dir``) for the files in that
        directory; the control client talks to the first account's address."""
        accounts = [self.accounts[a] for a in account_ids]
        index = len(self.daemons)
        daemon = Daemon(
            f"daemon {index}",
            [a.env_file for a in accounts] if env_dir is None else [],
            self.root / f"daemon-{index}.log",
            child_env(),
            notify_path=self.root / f"notify-{index}",
            client=ControlClient(accounts[0].control_addr, token, state_dir=accounts[0].state_dir),
        )
        if env_dir is not None:
            daemon.argv += ["--env-dir", str(env_dir)]
        self.daemons.append(daemon)
        return daemon

    def logs(self) -> str:
        procs: list[Proc] = [*self.daemons, *(a.simulator for a in self.accounts.values())]
        return "\n".join(p.tail() for p in procs)

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.close()
        for account in self.accounts.values():
            account.simulator.stop()
        if self.dovecot is not None:
            self.dovecot.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


def _write_env(path: Path, values: Mapping[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)


@contextlib.contextmanager
def running_stack(users: Iterable[str]) -> Iterator[Stack]:
    """A Stack with a private Dovecot for ``users``; its logs are printed, then it is closed."""
    if not dc.available():
        raise RuntimeError("dovecot is not installed: run `make test`, which installs it")
    stack = Stack()
    try:
        stack.start_dovecot(users)
        yield stack
    finally:
        print(stack.logs())
        stack.close()
