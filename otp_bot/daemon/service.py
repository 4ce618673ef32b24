"""The daemon: startup -> loop -> shutdown, for one or more accounts.

Startup checks the accounts as a whole (distinct ids, one token per control
address, distinct recipients on a shared mailbox) and hands them to a
``Fleet``, which locks each state directory, opens one ``Store`` per state
database, builds an ``Account`` (client, worker) per account, one mailbox
watcher per mailbox (shared by the accounts reading it) and one control API
per control address, each long-lived task under a supervisor so that one
account's failure never stops another. A housekeeping task tells systemd
``READY=1`` once every account's first mailbox connection ended (watching,
or failed and retrying: mailboxes connect at most
``OTP_BOT_IMAP_CONNECT_CONCURRENCY`` at a time) or its account is stuck in a
reported way, ``STATUS=`` with draft counts, and ``WATCHDOG=1`` only while
the mailbox loops make progress. SIGHUP reads the configuration sources again
and the fleet follows them (``_reload_once``); it never stops the daemon.
SIGTERM or SIGINT sets the stop event; tasks get ``STOP_GRACE`` to return,
then are cancelled. A second SIGINT exits at once (every transition is
already on disk).

(Over 250 lines: startup, the loop, signals, reloads and housekeeping read in
the order the daemon runs them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

import structlog

from otp_bot.config import Settings
from otp_bot.control.server import check_bind
from otp_bot.daemon.account import Account
from otp_bot.daemon.fleet import Fleet
from otp_bot.daemon.limits import ensure_fds, fds_needed
from otp_bot.daemon.mailboxes import check_shared
from otp_bot.daemon.metrics import DRAFT_STATES, Metrics
from otp_bot.daemon.notify import Notifier, watchdog_period
from otp_bot.errors import ConfigError, OtpBotError, StateLocked, StoreError

log = structlog.get_logger(__name__)

# After stop, tasks get this long to return before they are cancelled; the
# whole shutdown (control API and stores included) stays within 3 s.
STOP_GRACE = 2.0
# Housekeeping period: STATUS= and WATCHDOG= (metrics are not polled: set on
# change, or computed when scraped) ...
TICK = 2.0
# ... and, until READY=1 is sent, how often readiness is looked at (start fast).
READY_TICK = 0.05


# Where each account's settings came from (an env file), and a fresh reading
# of every source: (source, settings) pairs and (source, error) pairs.
Loaded = tuple[list[tuple[str, Settings]], list[tuple[str, str]]]


async def run(
    settings_list: Sequence[Settings],
    *,
    notifier: Notifier | None = None,
    environ: Mapping[str, str] = os.environ,
    stop: asyncio.Event | None = None,
    sources: Sequence[str] | None = None,
    reload: Callable[[], Loaded] | None = None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT (or ``stop``); 0 once stopped, state saved.

    ``sources[i]`` names where ``settings_list[i]`` came from; on SIGHUP
    ``reload()`` reads every source again and the running set follows it.
    """
    _check(settings_list)
    apis = {str(s.api_base_url).split("/")[2].lower() for s in settings_list}
    ensure_fds(fds_needed(len(settings_list), len({s.state_db for s in settings_list}), len(apis)))
    notifier = notifier or Notifier.from_env(environ)
    stop = stop or asyncio.Event()
    names = list(sources) if sources is not None else [""] * len(settings_list)
    wanted = {s.account_id: (name, s) for name, s in zip(names, settings_list, strict=True)}
    hangup = asyncio.Event()
    failure: OtpBotError | None = None
    with _signals(stop, hangup):
        async with asyncio.TaskGroup() as tasks:
            fleet = Fleet(tasks, stop, Metrics())
            try:
                await fleet.apply(wanted)
                log.info("daemon_started", accounts=[a.account_id for a in fleet.accounts()])
                await _loop(
                    fleet,
                    stop=stop,
                    hangup=hangup,
                    reload=reload,
                    notifier=notifier,
                    ping=watchdog_period(environ),
                )
            except OtpBotError as exc:  # raised after the task group ends (not as a group)
                failure = exc
            finally:
                await fleet.shutdown(STOP_GRACE)
                notifier.close()
    if failure is not None:
        raise failure
    log.info("daemon_stopped")
    return 0


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
    check_shared(settings_list)


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


@contextlib.contextmanager
def _signals(stop: asyncio.Event, hangup: asyncio.Event) -> Iterator[None]:
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

    def on_hangup() -> None:
        log.info("reload_requested", signal="SIGHUP")
        hangup.set()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # never a kill, even while exiting


async def _loop(
    fleet: Fleet,
    *,
    stop: asyncio.Event,
    hangup: asyncio.Event,
    reload: Callable[[], Loaded] | None,
    notifier: Notifier,
    ping: float | None,
) -> None:
    housekeeping = asyncio.create_task(_housekeeping(fleet.accounts, stop, notifier, ping))
    reloading = asyncio.create_task(_reloads(fleet, hangup, reload))
    await stop.wait()
    notifier.stopping()
    log.info("daemon_stopping")
    reloading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reloading
    await fleet.shutdown(STOP_GRACE)
    await housekeeping


async def _reloads(
    fleet: Fleet, hangup: asyncio.Event, reload: Callable[[], Loaded] | None
) -> None:
    """Apply a SIGHUP's reload, one at a time; nothing a reload meets ends the daemon."""
    while True:
        await hangup.wait()
        hangup.clear()
        if reload is None:
            log.warning("reload_skipped", reason="started without configuration sources")
            continue
        try:
            await _reload_once(fleet, reload)
        except Exception:  # a reload must never end the daemon
            log.exception("reload_failed")


async def _reload_once(fleet: Fleet, reload: Callable[[], Loaded]) -> None:
    loaded, bad = await asyncio.to_thread(reload)
    for source, error in bad:
        log.error("reload_file_skipped", source=source, error=error)
    broken = {source for source, _error in bad}
    fresh = {s.account_id for _source, s in loaded}
    kept = [  # an account whose file is unreadable now keeps running as it was
        (m.source, m.account.settings)
        for m in fleet.members.values()
        if m.source in broken and m.account.account_id not in fresh
    ]
    wanted = [*loaded, *kept]
    refused = None
    try:
        _check([s for _source, s in wanted])
        plan = await fleet.apply({s.account_id: (source, s) for source, s in wanted})
    except (ConfigError, StateLocked, StoreError) as exc:
        refused = str(exc)
    if refused is not None:  # nothing changed: the running set goes on as it was
        log.error("reload_rejected", error=refused)
        return
    log.info("reload_done", **plan)


async def _housekeeping(
    live: Callable[[], Sequence[Account]],
    stop: asyncio.Event,
    notifier: Notifier,
    ping: float | None,
) -> None:
    ready = False
    status = ""
    last_ping = float("-inf")
    while not stop.is_set():
        accounts = live()  # no metrics here: set on change, or computed when scraped
        if not ready and all(a.settled() for a in accounts):
            ready = True
            notifier.ready(status_line(accounts))
            log.info(
                "daemon_ready",
                watching=sum(1 for a in accounts if a.watcher.watching.is_set()),
                accounts={a.account_id: a.watcher.state for a in accounts},
            )
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
