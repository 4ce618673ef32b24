"""``otp-bot check``: prove the set-up without side effects.

One line per check: its name, ``ok``, ``FAILED`` or ``skipped``, what was
found and, for a failure, a hint. Every check runs (one failure does not hide
the next), except the clock, which needs the mailbox. The exit code names
the first class that failed, in this order:

    2  configuration: the control API's address and token rules, the CA file
    3  state directory: writable, not held by a running daemon
    4  postpress API: the key and the account, by an authenticated read
    5  mailbox: login, folder, IDLE; the server can do the after-use action
    6  clock: the mail server's clock against this host's

Nothing is published, written or changed: the API is asked ``GET
/accounts/{id}`` (a read, per the contract); the mailbox is logged into and
the folder selected, and the newest message's arrival time (INTERNALDATE) is
read; the state directory and its lock are only looked at.

(About 300 lines: one short function per check line, in the order they print.)
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from otp_bot.config import MailAction, Settings
from otp_bot.control import token as control_token
from otp_bot.control.server import check_bind
from otp_bot.daemon.dkimcheck import report_dkim
from otp_bot.daemon.statelock import holder
from otp_bot.errors import AccountError, ApiError, ConfigError, MailboxError, OtpBotError
from otp_bot.imap.auth import tls_context

if TYPE_CHECKING:
    from otp_bot.imap.probe import MailboxReport

EXIT_CONFIG, EXIT_STATE, EXIT_API, EXIT_MAILBOX, EXIT_CLOCK = 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Line:
    """The result of one check."""

    name: str
    status: str  # ok | FAILED | skipped
    detail: str
    hint: str = ""
    exit_code: int = 0  # the class of a failure

    def text(self) -> str:
        shown = f"{self.name:<9}{self.status}: {self.detail}"
        return shown + (f"\n         hint: {self.hint}" if self.hint else "")


def ok(name: str, detail: str) -> Line:
    return Line(name, "ok", detail)


def failed(name: str, code: int, detail: str, hint: str = "") -> Line:
    return Line(name, "FAILED", detail, hint, code)


def exit_code(lines: list[Line]) -> int:
    """0 when nothing failed, else the first failed class (the order above)."""
    return min((line.exit_code for line in lines if line.status == "FAILED"), default=0)


def report(lines: list[Line]) -> dict[str, object]:
    """What ``--json`` prints: one object."""
    code = exit_code(lines)
    return {"ok": code == 0, "exit_code": code, "checks": [asdict(line) for line in lines]}


async def check(settings: Settings, say: Callable[[Line], None]) -> list[Line]:
    """Run every check, reporting each line as soon as it is known."""
    lines: list[Line] = []

    def emit(line: Line) -> None:
        lines.append(line)
        say(line)

    emit(ok("config", f"account {settings.account_id}, from {len(settings.model_fields_set)} "
                      "variables set"))  # fmt: skip
    emit(control_line(settings))
    emit(ca_line(settings))
    emit(state_line(settings.state_dir))
    api, mailbox = await asyncio.gather(api_line(settings), mailbox_lines(settings))
    emit(api)
    for line in mailbox:
        emit(line)
    return lines


# --- configuration -------------------------------------------------------------


def control_line(settings: Settings) -> Line:
    token = settings.control_token.get_secret_value() if settings.control_token else None
    try:
        check_bind(settings.control_addr, token)
    except ConfigError as exc:
        return failed("control", EXIT_CONFIG, str(exc), "bind 127.0.0.1, or set a token")
    if token:
        return ok("control", f"{settings.control_addr}: every request needs the bearer token")
    where = settings.state_dir / control_token.TOKEN_FILE
    return ok(
        "control",
        f"{settings.control_addr} (loopback): drafts need the daemon's own token ({where}); "
        "cross-site requests refused",
    )


def ca_line(settings: Settings) -> Line:
    if settings.imap_ca_file is None:
        return ok("ca-file", "none set: the system's CAs verify the mail server")
    try:
        context = tls_context(settings.imap_ca_file)
    except (ssl.SSLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror
        return failed(
            "ca-file",
            EXIT_CONFIG,
            f"{settings.imap_ca_file} cannot be loaded ({reason or 'not a PEM certificate'})",
            "OTP_BOT_IMAP_CA_FILE must name a PEM file with the CA certificate(s)",
        )
    count = context.cert_store_stats()["x509_ca"]
    return ok("ca-file", f"{settings.imap_ca_file}: {count} CA certificate(s) in all")


# --- state directory -------------------------------------------------------------


def state_line(directory: Path) -> Line:
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return failed(
            "state",
            EXIT_STATE,
            f"{existing} is not a directory"
            + ("" if existing == directory else f" (in {directory})"),
            "OTP_BOT_STATE_DIR must name a directory (or one that can be created)",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        return failed(
            "state",
            EXIT_STATE,
            f"{existing} is not writable by this user"
            + ("" if existing == directory else f" (to create {directory})"),
            "OTP_BOT_STATE_DIR (or systemd's StateDirectory=) must be writable by the service",
        )
    held = holder(directory) if existing == directory else None
    if held:
        return failed(
            "state",
            EXIT_STATE,
            f"{directory} is in use by a running otp-bot daemon ({held})",
            "one daemon per state directory: stop it before starting another",
        )
    created = "exists" if existing == directory else "will be created"
    return ok("state", f"{directory} {created}, writable, not locked")


# --- postpress ---------------------------------------------------------------------


async def api_line(settings: Settings) -> Line:
    from otp_bot.postpress.client import PostpressClient

    try:
        async with PostpressClient.from_settings(settings) as client:
            account = await client.account()
    except AccountError as exc:
        return failed("api", EXIT_API, f"refused: {exc}", _api_hint(exc))
    except ApiError as exc:
        return failed("api", EXIT_API, str(exc), _api_hint(exc))
    except OtpBotError as exc:
        return failed("api", EXIT_API, str(exc), "check OTP_BOT_API_BASE_URL and the network")
    sources = ", ".join(account.statuses) or "none"
    if not account.usable:
        return failed(
            "api",
            EXIT_API,
            f"account {settings.account_id} ({account.name}) needs attention: sources {sources}",
            "reconnect the LinkedIn account in postpress",
        )
    return ok(
        "api", f"key accepted, account {settings.account_id} ({account.name}), sources {sources}"
    )


def _api_hint(exc: ApiError) -> str:
    if exc.problem.status == 401:
        return "check OTP_BOT_API_KEY"
    if exc.problem.status == 404:
        return "check OTP_BOT_ACCOUNT_ID: this key sees no such account"
    return "check OTP_BOT_API_KEY and OTP_BOT_ACCOUNT_ID"


# --- mailbox, trust and clock -------------------------------------------------------------


async def mailbox_lines(settings: Settings) -> list[Line]:
    from otp_bot.imap.probe import check_mailbox

    where = f"{settings.imap_host}:{settings.imap_port} ({settings.imap_security.value})"
    trust = trust_line(settings)
    try:
        found = await _bounded(check_mailbox(settings), settings)
    except MailboxError as exc:
        skipped = Line("clock", "skipped", "needs the mailbox")
        return [failed("mailbox", EXIT_MAILBOX, f"{where}: {exc}", exc.hint), trust, skipped]
    idle = "IDLE supported" if found.idle_supported else "no IDLE: polling fallback"
    line = ok(
        "mailbox",
        f"{where}, folder {settings.imap_folder}: {found.messages} messages, "
        f"UIDVALIDITY {found.uidvalidity}, {idle}",
    )
    clock = clock_line(found, settings.clock_skew, datetime.now(UTC))
    return [line, server_line(settings, found), trust, await dkim_line(settings), clock]


def server_line(settings: Settings, found: MailboxReport) -> Line:
    """The server's features as they matter for the after-use action and for waiting."""
    delimiter = found.namespace.delimiter or "none"
    features = (
        f"MOVE {_yes(found.move)}, UIDPLUS {_yes(found.uidplus)}, personal namespace "
        f'"{found.namespace.prefix}" (delimiter {delimiter}); new mail is probed every '
        f"{settings.imap_probe_interval:g} s while a code is awaited"
    )
    wanted = settings.mail_after_use
    if found.after_use is not wanted:
        need = "UIDPLUS" if wanted is MailAction.DELETE else "MOVE or UIDPLUS"
        return failed(
            "server",
            EXIT_MAILBOX,
            f"{features}; OTP_BOT_MAIL_AFTER_USE={wanted} needs {need}, which the server does "
            "not announce after login: the bot would only mark used mail seen",
            "set OTP_BOT_MAIL_AFTER_USE=seen",
        )
    if found.move_folder is not None:
        state = "exists" if found.move_folder_exists else "will be created at the first move"
        features += f"; used mail moves to {found.move_folder!r} ({state})"
    return ok("server", features)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


async def _bounded(work: Awaitable[MailboxReport], settings: Settings) -> MailboxReport:
    # Connect, login, select, a fetch and a few searches, each bounded by the IMAP timeout.
    try:
        return await asyncio.wait_for(work, 4 * float(settings.imap_timeout))
    except TimeoutError:
        hint = "check OTP_BOT_IMAP_HOST, OTP_BOT_IMAP_PORT and any firewall on the way"
        raise MailboxError("no answer in time", hint=hint) from None


async def dkim_line(settings: Settings) -> Line:
    """Information: the DKIM mode and how it judges LinkedIn's newest mail (``dkimcheck``)."""
    said: list[str] = []
    await report_dkim(settings, said.append)
    return ok("dkim", (said[-1] if said else "no report").removeprefix("dkim").strip())


def trust_line(settings: Settings) -> Line:
    ids = settings.trusted_authserv_ids
    also = f"; also from authserv-ids {', '.join(ids)}" if ids else ""
    return ok("trust", f"mail counts when the topmost Authentication-Results passes{also}")


def clock_line(report: MailboxReport, skew: float, now: datetime) -> Line:
    """The mail server's clock against this host's (``imap/clock.py``).

    Mail counts for a checkpoint by the time the server stamped it; a server
    clock behind ours by more than OTP_BOT_CLOCK_SKEW makes fresh codes look
    older than the checkpoint, and they are ignored.
    """
    if report.newest_arrival is None:
        return Line(
            "clock", "skipped", "the folder is empty: nothing to read the server's clock by"
        )
    offset = report.clock_offset
    if offset is None:  # no WITHIN: only "ahead", from an arrival in our future
        ahead = (report.newest_arrival - now).total_seconds()
        if ahead <= skew:
            return ok("clock", "the newest arrival is not in this host's future (no WITHIN: "
                               "a server clock behind ours cannot be seen)")  # fmt: skip
        offset = ahead
    words = (
        f"the mail server's clock is {abs(offset):.0f} s "
        + ("ahead of" if offset >= 0 else "behind")
        + " this host's"
    )
    if abs(offset) > skew:
        return failed(
            "clock",
            EXIT_CLOCK,
            f"{words}: more than OTP_BOT_CLOCK_SKEW ({skew:.0f} s)",
            "run NTP (chrony, systemd-timesyncd) on both hosts; until then, fresh codes may "
            "be taken for old ones and ignored",
        )
    return ok("clock", f"{words} (OTP_BOT_CLOCK_SKEW allows {skew:.0f} s)")
