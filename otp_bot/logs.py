"""Structured logging: structlog configured once, with redaction.

Every line, ours or a library's, goes through ``redact``:

- registered secrets (API key, IMAP password, OAuth tokens, control token)
  are replaced by ``[REDACTED]`` wherever they appear: values, nested values,
  exception messages and formatted tracebacks;
- the fields ``code``, ``input`` and ``link`` are masked, and every code or
  link registered with ``remember_sensitive`` is masked inside free text too.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# Fields whose values are codes, links or checkpoint inputs: always masked.
MASKED_FIELDS = frozenset({"code", "input", "link", "pin"})
# Codes and links seen recently are masked in free text as well; bounded so a
# daemon running for months does not grow without limit.
_SENSITIVE_MEMORY = 4096
# Anything shorter is too likely to collide with ordinary text (a 4-digit
# code would mask years); such values are only masked in their own fields.
_MIN_FREE_TEXT_SECRET = 6

_URL_RE = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._sensitive: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None

    def add_secret(self, value: str) -> None:
        if value and value not in self._secrets:
            with self._lock:
                self._secrets.add(value)
                self._pattern = None

    def add_sensitive(self, value: str) -> None:
        if len(value) < _MIN_FREE_TEXT_SECRET:
            return
        with self._lock:
            self._sensitive[value] = None
            self._sensitive.move_to_end(value)
            while len(self._sensitive) > _SENSITIVE_MEMORY:
                self._sensitive.popitem(last=False)
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None:
                values = sorted(self._secrets | set(self._sensitive), key=len, reverse=True)
                if values:
                    self._pattern = re.compile("|".join(re.escape(v) for v in values))
            return self._pattern

    def is_secret(self, value: str) -> bool:
        return value in self._secrets


_registry = _Registry()


def register_secrets(values: Iterable[str]) -> None:
    """Never let these strings reach a log line."""
    for value in values:
        _registry.add_secret(value)


def remember_sensitive(value: str) -> None:
    """Mask this code or link wherever it shows up in later log lines."""
    _registry.add_sensitive(value)


def mask_code(value: str) -> str:
    """``"123456"`` -> ``"****56"``: enough to tell two codes apart, not to use one."""
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 2) + value[-2:]


def mask_link(value: str) -> str:
    """Keep scheme, host and path; drop the query and fragment (the token)."""
    base = value.split("?", 1)[0].split("#", 1)[0]
    return base + ("?…" if base != value else "")


def _mask_field(value: object) -> object:
    if not isinstance(value, str):
        return REDACTED
    return mask_link(value) if _URL_RE.match(value) else mask_code(value)


def _scrub(value: object, pattern: re.Pattern[str] | None) -> object:
    if isinstance(value, str):
        if pattern is None:
            return value
        return pattern.sub(lambda m: REDACTED if _registry.is_secret(m[0]) else "****", value)
    if isinstance(value, dict):
        return {k: _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, pattern) for v in value]
    if isinstance(value, BaseException):
        return _scrub(f"{type(value).__name__}: {value}", pattern)
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: remove secrets, mask codes and links."""
    pattern = _registry.pattern()
    for key, value in list(event_dict.items()):
        if key in MASKED_FIELDS and value is not None:
            event_dict[key] = _mask_field(value)
        else:
            event_dict[key] = _scrub(value, pattern)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
    ]


def configure(
    log_format: str = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library logging, once per process."""
    register_secrets(secrets)
    stream = stream or sys.stderr
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    # Exceptions are formatted to text *before* redaction, so secrets inside
    # messages and tracebacks are scrubbed too.
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        redact,
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(), processors=final
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what our own events say.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def bind(**fields: Any) -> None:
    """Add fields (account_id, draft_id, uid) to every line of this task."""
    structlog.contextvars.bind_contextvars(**fields)


def scrub_text(text: str) -> str:
    """Redact free text outside logging (error messages printed by the CLI)."""
    result = _scrub(text, _registry.pattern())
    return result if isinstance(result, str) else text
