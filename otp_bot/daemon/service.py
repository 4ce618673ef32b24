"""The daemon: startup -> loop -> shutdown, for one or more accounts.

Startup opens one ``Store`` per state database, builds an ``Account`` (client,
mailbox watcher, worker) per env file and starts one control API per control
address. The loop runs every account's watcher and worker in a task group,
with a supervisor per task so that one account's failure never stops another.
A housekeeping task tells systemd ``READY=1`` once every mailbox is watched
(or its account is stuck in a reported way), ``STATUS=`` with draft counts,
and ``WATCHDOG=1`` only while the mailbox loops make progress. SIGTERM or
SIGINT sets the stop event; tasks get ``STOP_GRACE`` to return, then are
cancelled. A second SIGINT exits at once (every transition is already on
disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from otp_bot.config import Settings
from otp_bot.control.server import ControlServer, check_bind
from otp_bot.daemon.account import Account
from otp_bot.daemon.feed import EventFeed
from otp_bot.daemon.metrics import DRAFT_STATES, Metrics
from otp_bot.daemon.notify import Notifier, watchdog_period
from otp_bot.daemon.statelock import StateLock
from otp_bot.errors import ConfigError
from otp_bot.logs import bind
from otp_bot.postpress.client import SharedSessions
from otp_bot.store.db import Store

log = structlog.get_logger(__name__)

# After stop, tasks get this long to return before they are cancelled; the
# whole shutdown (control API and stores included) stays within 3 s.
STOP_GRACE = 2.0
# Housekeeping period: STATUS=, WATCHDOG=, metrics gauges ...
TICK = 0.5
# ... and, until READY=1 is sent, how often readiness is looked at (start fast).
READY_TICK = 0.05


async def run(
    settings_list: Sequence[Settings],
    *,
    notifier: Notifier | None = None,
    environ: Mapping[str, str] = os.environ,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT (or ``stop``); 0 once stopped, state saved."""
    _check(settings_list)
    notifier = notifier or Notifier.from_env(environ)
    stop = stop or asyncio.Event()
    metrics = Metrics()
    with _signals(stop), contextlib.ExitStack() as closing:
        _lock_state_dirs(settings_list, closing)
        stores = _open_stores(settings_list, closing)
        sessions = SharedSessions()  # one connection pool per API, for every account
        accounts = [Account(s, stores[s.state_db], metrics, sessions) for s in settings_list]
        servers = _control_servers(accounts, metrics)
        try:
            for server in servers:
                await server.start()
            log.info("daemon_started", accounts=[a.account_id for a in accounts])
            await _loop(accounts, stop, notifier, watchdog_period(environ))
        finally:
            for server in servers:
                await server.stop()
            for account in accounts:
                await account.client.close()
            await sessions.close()
            notifier.close()
    log.info("daemon_stopped")
    return 0


def _lock_state_dirs(settings_list: Sequence[Settings], closing: contextlib.ExitStack) -> None:
    """One daemon per state directory (raises StateLocked naming the holder's PID)."""
    for directory in sorted({s.state_dir.resolve() for s in settings_list}):
        closing.callback(StateLock.acquire(directory).release)


def _open_stores(settings_list: Sequence[Settings], closing: contextlib.ExitStack) -> dict[
    Path, Store]:  # fmt: skip
    """One Store per state database; accounts sharing a state directory share it."""
    stores: dict[Path, Store] = {}
    for settings in settings_list:
        if settings.state_db not in stores:
            store = Store(settings.state_db)
            closing.callback(store.close)
            stores[settings.state_db] = store
    return stores


def _check(settings_list: Sequence[Settings]) -> None:
    if not settings_list:
        raise ConfigError("no account configured")
    for s in settings_list:
        _warn_health_bound(s)
        _warn_clock_skew(s)
    ids = [s.account_id for s in settings_list]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"OTP_BOT_ACCOUNT_ID: {', '.join(duplicates)} given more than once")
    tokens: dict[str, set[str]] = defaultdict(set)
    for s in settings_list:
        token = s.control_token.get_secret_value() if s.control_token else ""
        check_bind(s.control_addr, token)
        tokens[s.control_addr].add(token)
    for addr, seen in tokens.items():
        if len(seen) > 1:
            raise ConfigError(
                f"OTP_BOT_CONTROL_TOKEN: the accounts sharing {addr} must use the same token"
            )


def _warn_clock_skew(s: Settings) -> None:
    # A skew as long as the code timeout lets a late e-mail of a draft's first
    # checkpoint pass for the e-mail of its re-publish (README, Reliability).
    if s.clock_skew >= s.code_timeout:
        log.warning(
            "clock_skew_not_below_code_timeout",
            account_id=s.account_id,
            clock_skew=s.clock_skew,
            code_timeout=s.code_timeout,
        )


def _warn_health_bound(s: Settings) -> None:
    # The mailbox loop reports progress each time IDLE (or a poll) returns.
    quiet = max(s.imap_idle_interval, s.imap_poll_interval) + s.imap_timeout
    if s.health_max_stale <= quiet:
        log.warning(
            "health_max_stale_too_short",
            account_id=s.account_id,
            health_max_stale=s.health_max_stale,
            should_exceed=quiet,
        )


def _control_servers(accounts: Sequence[Account], metrics: Metrics) -> list[ControlServer]:
    by_addr: dict[str, list[Account]] = defaultdict(list)
    for account in accounts:
        by_addr[account.settings.control_addr].append(account)
    servers = []
    for addr, group in by_addr.items():
        token = group[0].settings.control_token
        servers.append(
            ControlServer(
                addr,
                group,
                metrics,
                token=token.get_secret_value() if token else None,
                before_metrics=functools.partial(_refresh_metrics, group),
                events=_event_feed(group),
            )
        )
    return servers


def _event_feed(accounts: Sequence[Account]) -> EventFeed:
    """The events of these accounts (one source per state database), woken by their changes."""
    by_db: dict[Path, list[Account]] = defaultdict(list)
    for account in accounts:
        by_db[account.settings.state_db].append(account)
    feed = EventFeed([(group[0].events, [a.account_id for a in group]) for group in by_db.values()])
    for account in accounts:
        account.listeners.append(feed.bump)
    return feed


def _refresh_metrics(accounts: Sequence[Account]) -> None:
    for account in accounts:
        account.refresh_metrics()


@contextlib.contextmanager
def _signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            log.warning("forced_exit", reason="second SIGINT")
            os._exit(130)  # every transition is already committed to the store
        on_stop("SIGINT")

    def on_stop(name: str) -> None:
        if not stop.is_set():
            log.info("stop_requested", signal=name)
        stop.set()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)


async def _loop(
    accounts: Sequence[Account], stop: asyncio.Event, notifier: Notifier, ping: float | None
) -> None:
    async with asyncio.TaskGroup() as group:
        tasks = []
        for account in accounts:
            for name, coro in (
                ("mailbox", account.watcher.run(stop)),
                ("worker", account.worker.run(stop)),
                *account.duties(stop),
            ):
                tasks.append(group.create_task(_supervise(account, name, coro, stop)))
        housekeeping = group.create_task(_housekeeping(accounts, stop, notifier, ping))
        await stop.wait()
        notifier.stopping()
        log.info("daemon_stopping")
        _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
        for task in pending:
            log.warning("task_cancelled_at_shutdown", task=task.get_name())
            task.cancel()
        await housekeeping


async def _supervise(
    account: Account, name: str, coro: Coroutine[Any, Any, None], stop: asyncio.Event
) -> None:
    """Run one account task; its failure is reported, never spread to the others."""
    bind(account_id=account.account_id)
    asyncio.current_task().set_name(f"{account.account_id}/{name}")  # type: ignore[union-attr]
    try:
        await coro
    except Exception as exc:
        account.crashed = f"{name} task crashed: {type(exc).__name__}: {exc}"
        log.exception("account_task_crashed", task=name)
        return
    if not stop.is_set():
        account.crashed = f"{name} task returned before stop"
        log.error("account_task_ended", task=name)


async def _housekeeping(
    accounts: Sequence[Account], stop: asyncio.Event, notifier: Notifier, ping: float | None
) -> None:
    ready = False
    status = ""
    last_ping = float("-inf")
    while not stop.is_set():
        _refresh_metrics(accounts)
        if not ready and all(a.settled() for a in accounts):
            ready = True
            notifier.ready(status_line(accounts))
            log.info("daemon_ready", accounts={a.account_id: a.watcher.state for a in accounts})
        if ready and status != (status := status_line(accounts)):
            notifier.status(status)
        due = ping is not None and time.monotonic() - last_ping >= ping
        if ready and due and all(a.progressing() for a in accounts):
            notifier.watchdog()
            last_ping = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(TICK, ping or TICK) if ready else READY_TICK)


def status_line(accounts: Sequence[Account]) -> str:
    """``watching; 2 awaiting_code, 5 published`` (systemctl status shows it)."""
    mailboxes = sorted({a.watcher.state for a in accounts})
    counts: Counter[str] = Counter()
    for account in accounts:
        counts.update(account.counts())
    shown = ", ".join(f"{counts[state]} {state}" for state in DRAFT_STATES if counts[state])
    problems = [a.account_id for a in accounts if a.problem()]
    text = "/".join(mailboxes) + "; " + (shown or "no drafts")
    return text + (f"; unhealthy: {', '.join(problems)}" if problems else "")
