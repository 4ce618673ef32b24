"""The operator commands of the command line: cancel, retry --failed, resume, status filters.

Each talks to the running daemon's control API, as ``publish`` and ``status``
do (``control/client.py``), and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from otp_bot.errors import ConfigError
from otp_bot.solve.drafts import State

if TYPE_CHECKING:
    from otp_bot.control.client import ControlClient

Control = Callable[[argparse.Namespace], "ControlClient"]
Maker = Callable[[str], argparse.ArgumentParser]
EXIT_OK, EXIT_FAILURE = 0, 1
# --since 90m / 36h / 7d / 45s: a duration back from now.
_AGO = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Every draft state, for --state (the one table in solve/drafts.py).
STATES = tuple(state.value for state in State)


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 time (UTC when it names no zone) or a duration ago (``2h``)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        when = datetime.fromisoformat(text.strip()[:64])
    except ValueError:
        raise ConfigError(
            f"--since {text[:40]!r}: give an ISO 8601 time (2026-12-01T09:00Z) or 30m, 2h, 7d"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def status_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The filters ``otp-bot status`` sends (``--state``, ``--since``)."""
    since = parse_since(args.since, datetime.now(UTC)).isoformat() if args.since else None
    return {"state": args.state, "since": since}


def add_operator_commands(
    command: Maker, add_env_file: Callable[..., None], control: Control
) -> None:
    """``cancel``, ``retry`` and ``resume`` (``command(name)`` makes a sub-parser)."""
    cancel = command("cancel")
    cancel.add_argument("draft_id", metavar="DRAFT_ID")
    add_env_file(cancel)
    cancel.add_argument("--account-id", "--account", help="when several accounts share the API")
    cancel.set_defaults(handler=lambda args: _cancel(control(args), args))

    retry = command("retry")
    add_env_file(retry)
    retry.add_argument(
        "--failed", action="store_true", required=True, help="queue the failed drafts again"
    )
    retry.add_argument("--error", help="only those failed with this type (errors/...)")
    retry.add_argument("--account-id", "--account", help="only this account's drafts")
    retry.set_defaults(handler=lambda args: _retry(control(args), args))

    resume = command("resume")
    resume.add_argument("account", metavar="ACCOUNT", nargs="?", help="default: every account")
    add_env_file(resume)
    resume.set_defaults(handler=lambda args: _resume(control(args), args))


def _cancel(client: ControlClient, args: argparse.Namespace) -> int:
    reply = client.cancel(args.draft_id, args.account_id)
    print(json.dumps(reply.body, ensure_ascii=False))
    return EXIT_OK if reply.status == 200 else EXIT_FAILURE


def _retry(client: ControlClient, args: argparse.Namespace) -> int:
    print(json.dumps(client.retry_failed(args.error, args.account_id), ensure_ascii=False))
    return EXIT_OK


def _resume(client: ControlClient, args: argparse.Namespace) -> int:
    answer = client.resume(args.account)
    print(json.dumps(answer, ensure_ascii=False))
    still_held = [a for a in answer.get("accounts", []) if a.get("held")]
    return EXIT_FAILURE if still_held else EXIT_OK
