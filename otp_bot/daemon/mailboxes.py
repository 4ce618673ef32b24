"""Mailboxes shared by accounts: one watcher per mailbox, folder and state, mail fanned out by To.

Accounts of one process that read the same mailbox and folder (and keep their
state in the same database) share ONE IMAP connection and one watermark. The
watcher's handler is a ``Fanout``: it reads each message's To header
(``otp_bot.mail.recipients``) and hands the message to the one account it is
addressed to; a message addressed to none of them is logged and left alone
(no after-use action touches it: it may belong to another daemon).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from otp_bot.config import Settings
from otp_bot.errors import ConfigError
from otp_bot.imap.reading import IncomingMail
from otp_bot.imap.watcher import WatcherLinks
from otp_bot.mail.recipients import owner, read_recipients

if TYPE_CHECKING:
    from otp_bot.daemon.account import Account

log = structlog.get_logger(__name__)

# (host, port, user, folder): one IMAP folder, whoever reads it.
MailboxId = tuple[str, int, str, str]
# ... and the state database its watermark is kept in: one watcher each.
GroupKey = tuple[MailboxId, Path]
# The settings a mailbox watcher reads besides the account id.
WATCHER_FIELDS = ("mail_after_use", "mail_move_folder")


def mailbox_id(settings: Settings) -> MailboxId:
    return (
        settings.imap_host.lower(),
        settings.imap_port,
        settings.imap_user.lower(),
        settings.imap_folder,
    )


def group_key(settings: Settings) -> GroupKey:
    return mailbox_id(settings), settings.state_db


def watcher_settings(settings: Settings) -> dict[str, Any]:
    """What a shared watcher takes from its accounts' settings (equal for all of them)."""
    dumped = settings.model_dump()
    values = {k: v for k, v in dumped.items() if k.startswith("imap_") or k in WATCHER_FIELDS}
    if settings.imap_password is not None:  # SecretStr dumps as a mask: compare the value
        values["imap_password"] = settings.imap_password.get_secret_value()
    return values


def store_key(settings: Settings, members: int) -> str | None:
    """Name of a watcher's watermark: the account's own (None) when it reads alone."""
    if members <= 1:
        return None
    host, port, user, _folder = mailbox_id(settings)
    return f"mailbox:{user}@{host}:{port}"


def describe(mailbox: MailboxId) -> str:
    host, port, user, folder = mailbox
    return f"{user} on {host}:{port}, folder {folder}"


def check_shared(settings_list: Iterable[Settings]) -> None:
    """Refuse accounts on one mailbox and folder without distinct recipients, or with
    different IMAP settings where they would share a watcher (ConfigError)."""
    by_mailbox: dict[MailboxId, list[Settings]] = defaultdict(list)
    for settings in settings_list:
        by_mailbox[mailbox_id(settings)].append(settings)
    for mailbox, group in by_mailbox.items():
        if len(group) > 1:
            _check_recipients(mailbox, group)
            _check_same_imap(mailbox, group)


def _check_recipients(mailbox: MailboxId, group: Sequence[Settings]) -> None:
    ids = ", ".join(sorted(s.account_id for s in group))
    where = describe(mailbox)
    if any(not s.mail_recipients for s in group):
        raise ConfigError(
            f"OTP_BOT_MAIL_RECIPIENTS: accounts {ids} read one mailbox ({where}); "
            "each must name its own LinkedIn address(es)"
        )
    claimed: dict[str, str] = {}
    for settings in group:
        for address in settings.mail_recipients:
            other = claimed.setdefault(address, settings.account_id)
            if other != settings.account_id:
                raise ConfigError(
                    f"OTP_BOT_MAIL_RECIPIENTS: accounts {other} and {settings.account_id} "
                    f"both name {address} on one mailbox ({where})"
                )


def _check_same_imap(mailbox: MailboxId, group: Sequence[Settings]) -> None:
    by_state: dict[Path, list[Settings]] = defaultdict(list)
    for settings in group:
        by_state[settings.state_db].append(settings)
    for sharing in by_state.values():
        first = watcher_settings(sharing[0])
        for settings in sharing[1:]:
            differ = sorted(k for k, v in watcher_settings(settings).items() if first.get(k) != v)
            if differ:
                names = ", ".join(f"OTP_BOT_{k.upper()}" for k in differ)
                raise ConfigError(
                    f"{names}: accounts {sharing[0].account_id} and {settings.account_id} "
                    f"share one mailbox connection ({describe(mailbox)}) but set it differently"
                )


class Fanout:
    """A mailbox watcher's handler: each message to the one account it is addressed to."""

    def __init__(self, mailbox: MailboxId) -> None:
        self._log = log.bind(mailbox=describe(mailbox))
        self._members: dict[str, Account] = {}
        self._recipients: dict[str, frozenset[str]] = {}

    def set_members(self, accounts: Iterable[Account]) -> None:
        """Route to these accounts from now on (one swap: no message sees half of it)."""
        members = {a.account_id: a for a in accounts}
        self._members, self._recipients = (
            members,
            {
                account_id: frozenset(a.settings.mail_recipients)
                for account_id, a in members.items()
            },
        )

    @property
    def members(self) -> list[Account]:
        return list(self._members.values())

    def links(self) -> WatcherLinks:
        """The watcher's hooks, over whichever accounts are members at the time."""
        return WatcherLinks(
            awaiting_code=lambda: any(a.awaiting_code() for a in self._members.values()),
            mail_lag=self._mail_lag,
            after_use_failed=self._after_use_failed,
        )

    def _mail_lag(self, seconds: float) -> None:
        for account in self._members.values():  # the lag is the mailbox's: each account's too
            account.metrics.mail_lag(account.account_id, seconds)

    def _after_use_failed(self, action: str) -> None:
        for account in list(self._members.values())[:1]:  # counted once, on the first account
            account.metrics.after_use_failure(account.account_id, action)

    async def __call__(self, mail: IncomingMail) -> None:
        account_id, why = owner(read_recipients(mail.raw), self._recipients)
        if account_id is None:
            self._log.info("mail_not_addressed", uid=mail.uid, reason=why)
            return
        await self._members[account_id].on_mail(mail)
