"""``otp-bot check``: is this account ready to run?

Three steps, each one line of output, stopping at the first failure:

1. the configuration loads (done by the caller: a failure there exits 2);
2. IMAP: log in, select the folder, report IDLE support, the folder size,
   MOVE/UIDPLUS, the namespace and where used mail would go (no side effect);
   a ``move``/``delete`` the server cannot do to one message alone fails;
   then one informative ``dkim`` line: the OTP_BOT_DKIM_VERIFY mode and
   whether LinkedIn's newest mail in the folder verifies under it;
3. the API host: a TCP connection and, for https, a verified TLS handshake.
   No API request is sent: a check must not publish anything or spend quota.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from otp_bot.config import MailAction, Settings
from otp_bot.daemon.dkimcheck import report_dkim
from otp_bot.errors import MailboxAuthError, MailboxError

if TYPE_CHECKING:
    from otp_bot.imap.probe import MailboxReport

# A reachability probe, not a request: a few seconds tell enough.
CONNECT_TIMEOUT = 10.0


async def check(settings: Settings, say: Callable[[str], None]) -> bool:
    """Run the checks, reporting each; True when all passed."""
    say(f"config   ok: account {settings.account_id}, control API on {settings.control_addr}")
    if not await _mailbox(settings, say):
        return False
    await report_dkim(settings, say)
    return await _api_host(settings, say)


async def _mailbox(settings: Settings, say: Callable[[str], None]) -> bool:
    from otp_bot.imap.probe import check_mailbox

    where = f"{settings.imap_host}:{settings.imap_port} ({settings.imap_security.value})"
    try:
        report = await check_mailbox(settings)
    except MailboxAuthError as exc:
        say(f"mailbox  FAILED: {where}: login refused for {settings.imap_user}: {exc}")
        return False
    except MailboxError as exc:
        say(f"mailbox  FAILED: {where}: {exc}")
        return False
    idle = "IDLE supported" if report.idle_supported else "no IDLE: polling fallback"
    say(
        f"mailbox  ok: {where}, folder {settings.imap_folder}: {report.messages} messages, "
        f"UIDVALIDITY {report.uidvalidity}, {idle}"
    )
    return _server_report(settings, report, say)


def _server_report(settings: Settings, report: MailboxReport, say: Callable[[str], None]) -> bool:
    """The server's features as they matter for the after-use action and for waiting."""
    delimiter = report.namespace.delimiter or "none"
    say(
        f"server   MOVE {_yes(report.move)}, UIDPLUS {_yes(report.uidplus)}, personal "
        f'namespace "{report.namespace.prefix}" (delimiter {delimiter}); new mail is probed '
        f"every {settings.imap_probe_interval:g} s while a code is awaited (how late the "
        "server announces mail shows as mailbox_idle_lag once mail arrives)"
    )
    wanted = settings.mail_after_use
    if report.after_use is not wanted:
        need = "UIDPLUS" if wanted is MailAction.DELETE else "MOVE or UIDPLUS"
        say(
            f"mailbox  FAILED: OTP_BOT_MAIL_AFTER_USE={wanted} needs {need}, which the server "
            "does not announce after login; the bot would only mark used mail seen: "
            "set OTP_BOT_MAIL_AFTER_USE=seen"
        )
        return False
    if report.move_folder is not None:
        state = "exists" if report.move_folder_exists else "will be created at the first move"
        say(f"mailbox  used mail moves to {report.move_folder!r} ({state})")
    return True


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


async def _api_host(settings: Settings, say: Callable[[str], None]) -> bool:
    url = urlsplit(str(settings.api_base_url))
    secure = url.scheme == "https"
    host = url.hostname or ""
    port = url.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    timeout = min(CONNECT_TIMEOUT, float(settings.api_timeout))
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), timeout
        )
    except TimeoutError:
        say(f"api      FAILED: {host}:{port}: no answer within {timeout:.0f} s")
        return False
    except ssl.SSLError as exc:
        say(f"api      FAILED: {host}:{port}: TLS handshake failed: {exc.reason or exc}")
        return False
    except OSError as exc:
        say(f"api      FAILED: {host}:{port}: cannot connect: {exc.strerror or exc}")
        return False
    writer.close()
    await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    tls = ", TLS certificate verified" if secure else ", plain http"
    say(f"api      ok: {host}:{port} reachable{tls} (no request sent)")
    return True
