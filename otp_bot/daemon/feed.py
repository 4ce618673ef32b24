"""The event feed behind ``GET /events``: the draft events of the accounts of one control API.

Accounts sharing a control API may keep their state in different databases,
each with its own event ids: a stream's position is one id per database,
written ``12`` (one database) or ``12.40`` (two, in a fixed order). A
version counter, bumped after every transition, wakes the streams without
losing a wake-up between a read and a wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from otp_bot.daemon.outbox import event_json
from otp_bot.store.events import EventStore

JsonDict = dict[str, Any]


class EventFeed:
    """The events of ``sources`` (an event store and the accounts it holds), in id order."""

    def __init__(self, sources: Sequence[tuple[EventStore, Sequence[str]]]) -> None:
        self._sources = list(sources)
        self.version = 0
        self._bumped = asyncio.Event()

    def set_sources(self, sources: Sequence[tuple[EventStore, Sequence[str]]]) -> None:
        """Follow these accounts from now on (a reload changed them). Positions handed
        out before stay valid while the databases and their order stay the same (always,
        with one state directory); else a stream is told its cursor is unknown."""
        self._sources = list(sources)
        self.bump()

    def bump(self) -> None:
        """A transition was committed: wake the streams."""
        self.version += 1
        self._bumped.set()
        self._bumped = asyncio.Event()

    async def wait(self, version: int, within: float) -> bool:
        """Return True once the version moved past ``version``, False after ``within`` s."""
        if self.version != version:
            return True
        bumped = self._bumped
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bumped.wait(), within)
            return True
        return False

    def start(self, cursor: str | None) -> str:
        """A stream's first position: ``cursor`` (checked), else after the newest event."""
        if cursor is None:
            return _text([store.last_event_id() for store, _ in self._sources])
        return _text(self._parse(cursor))

    async def read(self, cursor: str, account_id: str | None) -> list[tuple[JsonDict, str]]:
        """The events after ``cursor`` (one page per database), each with the position after it."""
        marks = self._parse(cursor)
        out: list[tuple[JsonDict, str]] = []
        for index, (store, accounts) in enumerate(self._sources):
            wanted = [a for a in accounts if account_id in (None, a)]
            if not wanted:
                continue
            rows = store.events_after(marks[index], wanted)
            if rows:
                await store.durable()  # tell no one of a change not yet on disk
            for row in rows:
                marks[index] = row["id"]
                out.append((event_json(row), _text(marks)))
        return out

    def _parse(self, cursor: str) -> list[int]:
        parts = cursor.split(".")
        if len(parts) != len(self._sources) or not all(p.isdigit() and len(p) < 19 for p in parts):
            raise ValueError(cursor)
        return [int(p) for p in parts]


def _text(marks: Sequence[int]) -> str:
    return ".".join(str(mark) for mark in marks)
