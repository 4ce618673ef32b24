"""What the watcher shares with its account, and how late new mail is seen.

``WatcherLinks`` is the watcher's constructor-injected view of the rest of the
account: whether a draft waits for a code (then the folder is probed every
``OTP_BOT_IMAP_PROBE_INTERVAL``), and where to report lag and failed after-use
actions. ``LagMeter`` measures, for mail found while watching, the time from
its arrival (INTERNALDATE: server clock, whole seconds) to the bot seeing it,
and warns ``mailbox_idle_lag`` when the server announces mail late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger

from otp_bot.config import Settings
from otp_bot.imap.pool import ImapPool
from otp_bot.imap.reading import Fetched

# New mail seen this long after its arrival means the server's notifications
# are slow: mailbox_idle_lag, at most once per LAG_WARN_EVERY.
LAG_WARN = 30.0
LAG_WARN_EVERY = 600.0


def _never() -> bool:
    return False


def _ignore(_value: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WatcherLinks:
    """What the watcher asks of, and tells, the rest of its account."""

    # True while a draft of the account waits for a code: probe the folder often.
    awaiting_code: Callable[[], bool] = _never
    # Seconds from a new message's arrival (INTERNALDATE) to the bot seeing it.
    mail_lag: Callable[[float], None] = _ignore
    # An after-use action failed (its name); it will be tried again.
    after_use_failed: Callable[[str], None] = _ignore
    # Shared by the mailboxes of a process: how many may be connecting at once.
    connect_gate: asyncio.Semaphore | None = None
    # Shared by the mailboxes of a process: the threads their IMAP calls run on
    # (None: the process-wide default, ``pool.shared_pool()``).
    pool: ImapPool | None = None


def seen_by(*, idle: bool, spoke: bool) -> str:
    """How new mail was found: the server's IDLE notice, the bot's probe, or a poll."""
    if not idle:
        return "poll"
    return "idle" if spoke else "probe"


class LagMeter:
    def __init__(self, settings: Settings, links: WatcherLinks, log: FilteringBoundLogger) -> None:
        self._settings = settings
        self._links = links
        self._log = log
        self._warned = -LAG_WARN_EVERY  # monotonic time of the last mailbox_idle_lag

    def observe(self, batch: list[Fetched], how: str) -> None:
        """Report each message's lag; warn once in a while when the worst is too late."""
        now = time.time()
        lags = [
            (max(0.0, now - f.mail.internal_date.timestamp()), f.mail.uid)
            for f in batch
            if f.mail.internal_date is not None
        ]
        for lag, _uid in lags:
            self._links.mail_lag(lag)
        worst = max(lags, default=None)
        expected = self._settings.imap_poll_interval if how == "poll" else 0.0
        if worst is None or worst[0] <= LAG_WARN + expected:
            return
        if time.monotonic() - self._warned < LAG_WARN_EVERY:
            return
        self._warned = time.monotonic()
        self._log.warning(
            "mailbox_idle_lag",
            uid=worst[1],
            lag=round(worst[0], 1),
            seen_by=how,
            probe_interval=self._settings.imap_probe_interval,
            advice="the server announces new mail late; while a checkpoint waits the bot "
            "probes every OTP_BOT_IMAP_PROBE_INTERVAL seconds",
        )
