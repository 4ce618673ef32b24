"""The running accounts, mailboxes and control APIs, as one set that a reload can change.

``Fleet.apply(wanted)`` makes the running set match ``wanted`` (account id ->
where it came from, its settings), at start and at each SIGHUP:

1. prepare everything that can fail (cross-account checks, state locks and
   databases, new control addresses); a failure raises and changes nothing;
2. retire removed and changed accounts: their worker finishes the step under
   way, then stops (``AccountWorker.run``'s ``stop`` without ``abort``);
3. build the new and changed accounts, then regroup the mailboxes: a watcher
   whose members remain and whose IMAP settings did not change keeps its
   connection and only gets its members swapped; others stop or start;
4. start the new workers and point each control API at its accounts.

Untouched accounts keep their client, worker and mailbox connection. Every
task runs in the daemon's task group under ``supervise``.

(Over 250 lines: the four steps of ``apply`` share the fleet's bookkeeping
and read in the order above.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from otp_bot.config import Settings
from otp_bot.control import token as control_token
from otp_bot.control.server import ControlServer
from otp_bot.daemon.account import Account
from otp_bot.daemon.feed import EventFeed
from otp_bot.daemon.mailboxes import Fanout, GroupKey, group_key, store_key, watcher_settings
from otp_bot.daemon.metrics import Metrics
from otp_bot.daemon.statelock import StateLock
from otp_bot.imap.pool import ImapPool, pool_size
from otp_bot.imap.watcher import MailboxWatcher
from otp_bot.logs import bind, register_secrets
from otp_bot.postpress.client import SharedSessions
from otp_bot.solve.readers import ReaderPool, reader_count
from otp_bot.store.db import Store

log = structlog.get_logger(__name__)

Wanted = Mapping[str, tuple[str, Settings]]  # account id -> (source, settings)


@dataclass
class _Member:
    account: Account
    source: str
    retire: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None  # the worker
    duties: list[asyncio.Task[None]] = field(default_factory=list)  # retention, webhook


@dataclass
class _Mailbox:
    watcher: MailboxWatcher
    fanout: Fanout
    imap: dict[str, Any]  # watcher_settings() it was started with
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Fleet:
    """What runs; ``apply`` changes it, ``shutdown`` stops it (see the module docstring)."""

    def __init__(self, tasks: asyncio.TaskGroup, stop: asyncio.Event, metrics: Metrics) -> None:
        self._tasks, self._stop, self._metrics = tasks, stop, metrics
        self.members: dict[str, _Member] = {}
        self._mailboxes: dict[GroupKey, _Mailbox] = {}
        self._stores: dict[Path, Store] = {}
        self._locks: dict[Path, StateLock] = {}
        self._servers: dict[str, ControlServer] = {}
        self._feeds: dict[str, EventFeed] = {}  # GET /events of each control address
        self._sessions = SharedSessions()  # one connection pool per API, for every account
        self._connect_gate: asyncio.Semaphore | None = None  # mailboxes connecting at once
        self._imap_pool: ImapPool | None = None  # threads for every mailbox's IMAP calls
        self._reader = ReaderPool()  # child processes reading every account's mail
        self._closed = False

    def accounts(self) -> list[Account]:
        return [m.account for m in self.members.values()]

    def running(self) -> list[asyncio.Task[None]]:
        tasks = [m.task for m in self.members.values()]
        tasks += [t for m in self.members.values() for t in m.duties]
        tasks += [b.task for b in self._mailboxes.values()]
        return [t for t in tasks if t is not None]

    # --- apply ------------------------------------------------------------------

    async def apply(self, wanted: Wanted) -> dict[str, list[str]]:
        """Run exactly ``wanted`` (checked as a whole by the caller); returns the account
        ids added, removed, changed and kept."""
        settings = [s for _source, s in wanted.values()]
        new_locks = self._lock(settings)
        try:
            self._open_stores(settings)
            await self._new_servers(settings)
        except BaseException:
            for path in new_locks:
                self._locks.pop(path).release()
            raise
        if settings and not self.members:  # process-wide: the first account's setting
            self._reader.limit = reader_count(settings[0].mail_readers)
        if settings:  # the first mails (a storm: one per account) find their children ready
            self._tasks.create_task(self._reader.start(len(settings)))
        plan = _diff(self.members, wanted)
        await self._retire([*plan["removed"], *plan["changed"]])
        for account_id in (*plan["added"], *plan["changed"]):
            source, config = wanted[account_id]
            register_secrets(config.secrets())
            store = self._stores[config.state_db]
            feed = self._feeds[config.control_addr]  # its control API's GET /events
            account = Account(
                config, store, self._metrics, self._sessions, self._reader, listeners=[feed.bump]
            )
            self.members[account_id] = _Member(account, source)
        await self._regroup()
        for account_id in (*plan["added"], *plan["changed"]):
            self._start_worker(self.members[account_id])
            log.info("account_started", account_id=account_id, source=wanted[account_id][0])
        await self._point_servers()
        return plan

    def _lock(self, settings: Sequence[Settings]) -> list[Path]:
        taken: list[Path] = []
        try:
            for directory in sorted({s.state_dir.resolve() for s in settings} - set(self._locks)):
                self._locks[directory] = StateLock.acquire(directory)
                taken.append(directory)
        except BaseException:
            for directory in taken:
                self._locks.pop(directory).release()
            raise
        return taken

    def _open_stores(self, settings: Sequence[Settings]) -> None:
        for config in settings:
            if config.state_db not in self._stores:
                self._stores[config.state_db] = Store(config.state_db)

    async def _new_servers(self, settings: Sequence[Settings]) -> None:
        by_addr: dict[str, list[Settings]] = defaultdict(list)
        for config in settings:
            by_addr[config.control_addr].append(config)
        for addr, group in by_addr.items():
            explicit = group[0].control_token
            server = self._servers.get(addr)
            # Without OTP_BOT_CONTROL_TOKEN the daemon's own token guards the API, kept
            # (0600) in each state directory of the address for the CLI to read; a
            # reload keeps the token the running server has.
            token = (
                explicit.get_secret_value()
                if explicit
                else control_token.ensure(
                    (c.state_dir for c in group),
                    keep=server.token_text if server and server.generated else None,
                )
            )
            register_secrets([token])
            if server is not None and server.token_text == token:
                continue
            if server is not None:  # the token changed: listen anew
                await server.stop()
            feed = self._feeds.setdefault(addr, EventFeed([]))
            server = ControlServer(
                addr,
                [],
                self._metrics,
                token=token,
                generated=explicit is None,
                before_metrics=functools.partial(_refresh_metrics, self),
                events=feed,
            )
            await server.start()
            self._servers[addr] = server

    async def _retire(self, account_ids: Sequence[str]) -> None:
        """Stop these accounts' workers after their current step; close their clients."""
        members = [self.members.pop(a) for a in account_ids]
        for member in members:
            member.retire.set()
        for member in members:
            tasks = {t for t in (member.task, *member.duties) if t is not None}
            if tasks:
                await asyncio.wait(tasks)
            await member.account.client.close()
            log.info("account_stopped", account_id=member.account.account_id)

    async def _regroup(self) -> None:
        groups: dict[GroupKey, list[Account]] = defaultdict(list)
        for account in sorted(self.accounts(), key=lambda a: a.account_id):
            groups[group_key(account.settings)].append(account)
        for key in list(self._mailboxes):
            box = self._mailboxes[key]
            members = groups.get(key, [])
            if not members or watcher_settings(members[0].settings) != box.imap:
                await self._stop_mailbox(key)
        for key, members in groups.items():
            box = self._mailboxes.get(key) or self._start_mailbox(key, members)
            box.fanout.set_members(members)
            for account in members:
                account.attach(box.watcher)

    def _start_mailbox(self, key: GroupKey, members: Sequence[Account]) -> _Mailbox:
        lead = members[0].settings
        fanout = Fanout(key[0])
        store = self._stores[lead.state_db]
        key_name = store_key(lead, len(members))
        if self._connect_gate is None or self._imap_pool is None:  # process-wide: the first
            concurrency = lead.imap_connect_concurrency  # account's setting
            self._connect_gate = asyncio.Semaphore(concurrency)
            self._imap_pool = ImapPool(pool_size(concurrency))
        links = dataclasses.replace(
            fanout.links(), connect_gate=self._connect_gate, pool=self._imap_pool
        )
        watcher = MailboxWatcher(lead, store, fanout, links=links, key=key_name)
        box = _Mailbox(watcher, fanout, watcher_settings(lead))
        self._mailboxes[key] = box
        box.task = self._spawn(
            lambda: box.fanout.members, "mailbox", watcher.run(box.stop), box.stop
        )
        return box

    async def _stop_mailbox(self, key: GroupKey) -> None:
        box = self._mailboxes.pop(key)
        box.stop.set()
        if box.task is not None:
            await asyncio.wait({box.task})

    def _start_worker(self, member: _Member) -> None:
        account = member.account
        run = account.worker.run(member.retire, abort=self._stop)
        member.task = self._spawn(lambda: [account], "worker", run, member.retire)
        member.duties = [
            self._spawn(lambda: [account], name, duty, member.retire)
            for name, duty in account.operations.duties(member.retire)
        ]

    def _spawn(
        self,
        owners: Callable[[], list[Account]],
        name: str,
        coro: Coroutine[Any, Any, None],
        stop: asyncio.Event,
    ) -> asyncio.Task[None]:
        return self._tasks.create_task(supervise(owners, name, coro, stop))

    async def _point_servers(self) -> None:
        by_addr: dict[str, list[Account]] = defaultdict(list)
        for account in self.accounts():
            by_addr[account.settings.control_addr].append(account)
        for addr in list(self._servers):
            if addr in by_addr:
                self._servers[addr].set_accounts(by_addr[addr])
                self._follow(self._feeds[addr], by_addr[addr])
            else:
                await self._servers.pop(addr).stop()
                del self._feeds[addr]

    @staticmethod
    def _follow(feed: EventFeed, accounts: Sequence[Account]) -> None:
        """The feed reads these accounts' events (one source per database, in first-seen
        order); their transitions wake it (``Account``'s listeners)."""
        by_db: dict[Path, list[Account]] = {}
        for account in accounts:
            by_db.setdefault(account.settings.state_db, []).append(account)
        feed.set_sources(
            [
                (group[0].operations.events, [a.account_id for a in group])
                for group in by_db.values()
            ]
        )

    # --- stop ---------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Ask every task to return (steps in flight are cancelled), wait up to ``grace``
        seconds, cancel the rest, then close clients, control APIs, stores and locks.
        Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for member in self.members.values():
            member.retire.set()
        for box in self._mailboxes.values():
            box.stop.set()
        running = [t for t in self.running() if not t.done()]
        if running:
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                log.warning("task_cancelled_at_shutdown", task=task.get_name())
                task.cancel()
        for server in self._servers.values():
            await server.stop()
        for account in self.accounts():
            await account.client.close()
        await self._sessions.close()
        await self._reader.close()
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        for lock in self._locks.values():
            lock.release()


def _diff(running: Mapping[str, _Member], wanted: Wanted) -> dict[str, list[str]]:
    plan: dict[str, list[str]] = {"added": [], "removed": [], "changed": [], "kept": []}
    for account_id in sorted(running.keys() | wanted.keys()):
        if account_id not in wanted:
            plan["removed"].append(account_id)
        elif account_id not in running:
            plan["added"].append(account_id)
        elif running[account_id].account.settings != wanted[account_id][1]:
            plan["changed"].append(account_id)
        else:
            plan["kept"].append(account_id)
    return plan


def _refresh_metrics(fleet: Fleet) -> None:
    for account in fleet.accounts():
        account.refresh_metrics()


async def supervise(
    owners: Callable[[], list[Account]],
    name: str,
    coro: Coroutine[Any, Any, None],
    stop: asyncio.Event,
) -> None:
    """Run one long-lived task; its failure is reported on its accounts, never spread."""
    label = "+".join(a.account_id for a in owners()) or name
    bind(account_id=label)
    with contextlib.suppress(AttributeError):
        asyncio.current_task().set_name(f"{label}/{name}")  # type: ignore[union-attr]
    try:
        await coro
    except Exception as exc:
        for account in owners():
            account.crashed = f"{name} task crashed: {type(exc).__name__}: {exc}"
        log.exception("account_task_crashed", task=name)
        return
    if not stop.is_set():
        for account in owners():
            account.crashed = f"{name} task returned before stop"
        log.error("account_task_ended", task=name)
