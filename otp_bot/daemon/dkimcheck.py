"""``otp-bot check``'s DKIM line: the mode in effect and how it judges LinkedIn's newest mail.

Informative only (it never fails the check): the newest message from
linkedin.com in the folder is read as the daemon would read it under
``OTP_BOT_DKIM_VERIFY``, including the DNS key lookup for ``self`` and
``both``. A mailbox whose server writes no Authentication-Results shows up
here as ``no_authentication_results`` in ``server`` mode, with the hint to
use ``self``.
"""

from __future__ import annotations

from collections.abc import Callable

from otp_bot.config import DkimVerify, Settings
from otp_bot.errors import MailboxError
from otp_bot.mail.dkim import key_names_of
from otp_bot.mail.extract import extract
from otp_bot.solve.dkimkeys import DkimKeys


async def report_dkim(settings: Settings, say: Callable[[str], None]) -> None:
    """One ``dkim`` line: the mode, and whether LinkedIn's newest mail verified under it."""
    from otp_bot.imap.probe import last_linkedin_mail

    mode = settings.dkim_verify
    try:
        raw = await last_linkedin_mail(settings)
    except MailboxError as exc:
        say(f"dkim     mode {mode.value}: cannot read the newest LinkedIn mail: {exc}")
        return
    if raw is None:
        say(f"dkim     mode {mode.value}: no mail from linkedin.com in the folder yet")
        return
    keys = None
    if mode is not DkimVerify.SERVER:
        keys = DkimKeys.from_nameservers(settings.dkim_nameservers)
        await keys.fetch(key_names_of(raw))
    found = extract(
        raw,
        trusted_authserv_ids=frozenset(settings.trusted_authserv_ids),
        server_results=mode is not DkimVerify.SELF,
        dkim_keys=keys.lookup if keys is not None else None,
    )
    about = f"newest LinkedIn mail ({found.subject[:60]!r})"
    if found.trusted:
        own = f", own DKIM check {found.dkim}" if found.dkim else ""
        say(f"dkim     mode {mode.value}: {about} verified{own}")
        return
    hint = ""
    if mode is DkimVerify.SERVER and (found.reason or "").startswith("no_authentication_results"):
        hint = " (this server writes no Authentication-Results: try OTP_BOT_DKIM_VERIFY=self)"
    say(f"dkim     mode {mode.value}: {about} NOT verified: {found.reason}{hint}")
