"""Structured logging: structlog configured once, with redaction.

Every line, ours or a library's, goes through ``redact``:

- registered secrets (API key, IMAP password, OAuth tokens, control token)
  are replaced by ``[REDACTED]`` wherever they appear: values, nested values,
  exception messages and formatted tracebacks;
- the fields ``code``, ``input``, ``link`` and ``pin`` are masked; in free
  text, every link loses its query and fragment (where its token lives) and
  every 6-8 digit run that is a code seen recently is masked.

The cost of a line does not grow with the number of accounts: secrets are
matched by one trie-shaped pattern, compiled once per set of secrets (a new
OAuth token joins a small side pattern first, merged in by the dozen), and
codes and links are found by their shape, then looked up in a bounded set.
(Over 250 lines: the matcher and its registry belong with the processor
that uses them; apart, neither reads on its own.)
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import urlsplit

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from otp_bot.terminal import printable, printable_lines

REDACTED = "[REDACTED]"
# Fields whose values are codes, links or checkpoint inputs: always masked.
MASKED_FIELDS = frozenset({"code", "input", "link", "pin"})
# Fields the processors add themselves: a timestamp's microseconds must not be
# mistaken for a code.
_OWN_FIELDS = frozenset({"timestamp", "level", "logger"})
# Codes seen recently are masked in free text as well; bounded so a daemon
# running for months does not grow without limit.
_SENSITIVE_MEMORY = 4096
# Anything shorter is too likely to collide with ordinary text (a 4-digit
# code would mask years); such values are only masked in their own fields.
_MIN_FREE_TEXT_SECRET = 6
# Secrets added since the main pattern was built are matched by a small side
# pattern; past this many, they are merged into the main one.
_RECENT_SECRETS = 16
# An owner (one account's OAuth token) keeps only its newest few values.
_SECRETS_PER_OWNER = 2

_URL_RE = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
# Links anywhere in free text (our own URL shape, the extractor's www. too).
_FREE_LINK_RE = re.compile(r"(?:https?://|www\.)[^\s\"'<>]++", re.IGNORECASE)
# Digit runs; runs of 6+ digits are looked up, window by window, among codes.
_DIGITS_RE = re.compile(r"\d{6,}+")


def _trie_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching any of ``values``, longest first, shaped as a trie.

    A plain alternation tries every value at every position, so its cost grows
    with the number of accounts; a trie tries one branch per character.
    Matching at a position walks at most the longest value, never more.
    """
    ordered = sorted(set(values), key=len, reverse=True)
    if not ordered:
        return None
    try:
        return re.compile(_trie_regex(_trie(ordered)))
    except (RecursionError, re.error):  # pathological nesting: the plain form
        return re.compile("|".join(re.escape(value) for value in ordered))


def _trie(values: Iterable[str]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}
    return root


def _trie_regex(node: dict[str, Any]) -> str:
    """The node's alternatives; single-child chains are collapsed, so recursion
    goes only as deep as the values branch (not as long as they are)."""
    branches = []
    for first, child in sorted(node.items()):
        if not first:
            continue
        chain, below = [first], child
        while len(below) == 1 and "" not in below:
            ((char, below),) = below.items()
            chain.append(char)
        branches.append(re.escape("".join(chain)) + _trie_regex(below))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


# The user:password part of any URL in free text (bounded: linear scan).
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,15}://)[^\s/@\"'<>]{1,256}@")


class _Registry:
    """The secrets to remove and the codes to mask; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()  # in the main pattern
        self._recent: set[str] = set()  # not yet: in the side pattern
        self._owned: dict[str, deque[str]] = {}
        self._codes: OrderedDict[str, None] = OrderedDict()
        self._main: re.Pattern[str] | None = None
        self._side: re.Pattern[str] | None = None
        self._stale = False

    def add_secret(self, value: str, owner: str | None = None) -> None:
        if not value:
            return
        with self._lock:
            if owner is not None:
                self._own(owner, value)
            if value in self._secrets or value in self._recent:
                return
            self._recent.add(value)
            self._stale = True

    def _own(self, owner: str, value: str) -> None:
        kept = self._owned.setdefault(owner, deque(maxlen=_SECRETS_PER_OWNER))
        if value in kept:
            return
        if len(kept) == kept.maxlen:  # the oldest value is dropped with the next build
            old = kept[0]
            self._secrets.discard(old)
            self._recent.discard(old)
            self._main = None
        kept.append(value)

    def add_code(self, value: str) -> None:
        with self._lock:
            self._codes[value] = None
            self._codes.move_to_end(value)
            while len(self._codes) > _SENSITIVE_MEMORY:
                self._codes.popitem(last=False)

    def is_code(self, value: str) -> bool:
        return value in self._codes

    def patterns(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        """The main and side secret patterns, rebuilt only after a change."""
        with self._lock:
            if self._main is None or len(self._recent) > _RECENT_SECRETS:
                self._secrets |= self._recent
                self._recent.clear()
                self._main = _trie_pattern(self._secrets)
                self._stale = True
            if self._stale:
                self._side = _trie_pattern(self._recent)
                self._stale = False
            return self._main, self._side


_registry = _Registry()


def register_secrets(values: Iterable[str], *, owner: str | None = None) -> None:
    """Never let these strings reach a log line.

    ``owner`` (e.g. one account's OAuth token): only that owner's newest
    values are kept, so tokens refreshed for months do not pile up.
    """
    for value in values:
        _registry.add_secret(value, owner)


def remember_sensitive(value: str) -> None:
    """Mask this code wherever it shows up in later log lines (links: always masked)."""
    if len(value) >= _MIN_FREE_TEXT_SECRET and value.isdigit():
        _registry.add_code(value)


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


def _mask_digits(match: re.Match[str]) -> str:
    """Mask every recently seen code inside one run of digits (longest first)."""
    run, out, start = match[0], [], 0
    while start <= len(run) - _MIN_FREE_TEXT_SECRET:
        size = next(
            (
                n
                for n in range(8, _MIN_FREE_TEXT_SECRET - 1, -1)
                if start + n <= len(run) and _registry.is_code(run[start : start + n])
            ),
            0,
        )
        if size:
            out.append("****")
            start += size
        else:
            out.append(run[start])
            start += 1
    out.append(run[start:])
    return "".join(out)


def _scrub_text(text: str, main: re.Pattern[str] | None, side: re.Pattern[str] | None) -> str:
    if "://" in text and "@" in text:
        text = _USERINFO_RE.sub(r"\1****@", text)
    for pattern in (main, side):
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
    if "://" in text or "www." in text:
        text = _FREE_LINK_RE.sub(lambda m: mask_link(m[0]), text)
    return _DIGITS_RE.sub(_mask_digits, text)


def _scrub(value: object, main: re.Pattern[str] | None, side: re.Pattern[str] | None) -> object:
    if isinstance(value, str):
        return _scrub_text(value, main, side)
    if isinstance(value, dict):
        return {k: _scrub(v, main, side) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, main, side) for v in value]
    if isinstance(value, BaseException):
        return _scrub_text(f"{type(value).__name__}: {value}", main, side)
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: remove secrets, mask codes and links."""
    main, side = _registry.patterns()
    for key, value in list(event_dict.items()):
        if key in _OWN_FIELDS:
            continue  # written by the logging set-up, never from outside
        if key in MASKED_FIELDS and value is not None:
            event_dict[key] = _mask_field(value)
        else:
            event_dict[key] = _scrub(value, main, side)
    return event_dict


def terminal_safe(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor for console output: control and BiDi characters in text values
    (from mail, requests) escaped; a traceback keeps its line breaks."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            multi_line = key in ("exception", "stack")
            event_dict[key] = printable_lines(value) if multi_line else printable(value)
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
        *([terminal_safe] if console else []),  # JSON escapes control characters itself
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(), processors=final
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    # No line of ours shows the caller's file and line: skip looking them up for
    # every record (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
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
    return _scrub_text(text, *_registry.patterns())


# A token-command argument shorter than this is an option or a name, not a secret.
_MIN_ARGUMENT_SECRET = 8


def mask_command(command: str) -> str:
    """The program name only: arguments may hold a refresh token."""
    program = command.split(maxsplit=1)
    return program[0] + (" ****" if len(program) > 1 else "")


def command_secrets(command: str) -> list[str]:
    """Arguments of the token command that may be secrets (``--token=...`` values too)."""
    found = []
    for argument in command.split()[1:]:
        value = argument.partition("=")[2] if argument.startswith("-") else argument
        if len(value.strip("'\"")) >= _MIN_ARGUMENT_SECRET:
            found.append(value.strip("'\""))
    return found


def url_secrets(url: str) -> list[str]:
    """The ``user:password`` part of a URL, and the password alone."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    return [userinfo, password] if len(password) >= _MIN_ARGUMENT_SECRET else [userinfo]


def mask_url(url: str) -> str:
    """``https://user:pw@host/v1`` -> ``https://****@host/v1``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="****@" + parts.netloc.rpartition("@")[2]).geturl()
