"""File descriptors: what N accounts need, and the soft limit raised to cover it.

Each account holds its IMAP socket (counted twice: room for an OAuth2 token
command's pipes or a reconnect's new socket); the postpress connection pool is shared (at most
``SharedSessions.LIMIT`` sockets per API), each state database holds three
files (database, WAL, shared memory), and the control API needs room for its
clients. Short of descriptors, accept() and connect() fail at random (drafts
end ``network_error``, the control API stops answering), so the daemon
checks before it starts: it raises its soft ``RLIMIT_NOFILE`` up to the hard
limit when that is needed, and refuses to start, saying what to set, when
even the hard limit is too low.
"""

from __future__ import annotations

import resource

import structlog

from otp_bot.errors import ConfigError
from otp_bot.postpress.client import SharedSessions

log = structlog.get_logger(__name__)

# The interpreter, its libraries, log streams, the notify socket, ...
BASE_FDS = 64
PER_ACCOUNT_FDS = 2  # IMAP socket, and room for a token command's pipes
PER_STORE_FDS = 3  # database, -wal, -shm
# Control API clients at once (status, health probes, metrics scrapes, publishes).
CONTROL_FDS = 256


def fds_needed(accounts: int, stores: int, apis: int) -> int:
    """Descriptors a daemon with this many accounts, state databases and APIs needs."""
    return (
        BASE_FDS
        + PER_ACCOUNT_FDS * accounts
        + PER_STORE_FDS * stores
        + SharedSessions.LIMIT * apis
        + CONTROL_FDS
    )


def ensure_fds(needed: int) -> int:
    """Make the soft limit at least ``needed`` (up to the hard limit); the limit now.

    Raises ``ConfigError`` (exit 2: a restart cannot fix it) when the hard
    limit is below ``needed``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed if soft == resource.RLIM_INFINITY else soft
    target = needed if hard == resource.RLIM_INFINITY else hard
    if target >= needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:  # e.g. a seccomp filter refusing setrlimit
            log.warning("fd_limit_not_raised", soft=soft, needed=needed, error=str(exc))
        else:
            log.info("fd_limit_raised", soft_was=soft, soft=target, hard=hard, needed=needed)
            return target
    raise ConfigError(
        f"this daemon needs about {needed} file descriptors for its accounts but may open "
        f"only {soft} (hard limit {'unlimited' if hard == resource.RLIM_INFINITY else hard}): "
        "raise it (systemd: LimitNOFILE=65536; docker run --ulimit nofile=65536; "
        "Kubernetes: the container runtime's default, usually 1048576) or run fewer "
        "accounts per daemon (docs/scaling.md)"
    )
