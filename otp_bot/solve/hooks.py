"""What the per-account worker reports as it goes (metrics): ``WorkerHooks``, called safely.

The daemon passes its metrics in as hooks, the way the API client takes
``on_retry``; nothing in ``solve`` imports the metrics. A hook that raises
is logged (``on_change_failed``, with the hook's name) and never stops the
worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from structlog.typing import FilteringBoundLogger

from otp_bot.solve.drafts import Draft


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WorkerHooks:
    """What the worker reports as it goes (metrics). A hook that raises is logged, not fatal."""

    # A draft was added or moved.
    changed: Callable[[Draft], None] = _ignore
    # An API call ended in an error envelope: its ``errors/...`` type.
    api_error: Callable[[str], None] = _ignore
    # A submitted input's answer: published, checkpoint, invalid, expired or error.
    submitted: Callable[[str], None] = _ignore
    # The input's form (code, link, pin) and the seconds from its e-mail being
    # seen to the input being sent.
    latency: Callable[[str, float], None] = _ignore


NO_HOOKS = WorkerHooks()


def report(log: FilteringBoundLogger, hook: Callable[..., None], *args: Any) -> None:
    """Call ``hook(*args)``; if it raises, log ``on_change_failed`` and go on."""
    try:
        hook(*args)
    except Exception:  # a metrics hook must not stop the worker
        name = getattr(hook, "__name__", type(hook).__name__)
        about = {"draft_id": args[0].draft_id} if args and isinstance(args[0], Draft) else {}
        log.exception("on_change_failed", hook=name, **about)
