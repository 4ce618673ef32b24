"""What the server says about itself after login, and names in its terms.

Pure functions over the server's answers: the capabilities (read after login,
never imaplib's pre-login list), the personal namespace (RFC 2342) and the
hierarchy delimiter, and from those the real name of a configured folder such
as ``otp-bot/used`` (``INBOX.otp-bot.used`` on Courier, ``otp-bot.used`` on
Dovecot with Maildir++, ``otp-bot/used`` on Gmail).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Answers longer than this are not real NAMESPACE / CAPABILITY lines; the
# parsers look at no more than this many bytes of them.
MAX_ANSWER = 4096

# The first personal namespace: (("prefix" "delimiter") ...) or (("prefix" NIL) ...).
# Each quoted string is a possessive run of plain characters or escaped pairs,
# so matching is linear in the answer's length.
_PERSONAL = re.compile(
    rb'\A\s*+\(\s*+\(\s*+"((?:[^"\\]|\\.)*+)"\s++(?:"((?:[^"\\]|\\.)*+)"|NIL)', re.IGNORECASE
)
_LIST_DELIMITER = re.compile(rb'\A\([^)]*+\) "((?:[^"\\]|\\.)++)"')
_ESCAPED = re.compile(rb"\\(.)")


@dataclass(frozen=True, slots=True)
class Namespace:
    """Where personal folders live: ``prefix`` + names joined by ``delimiter``."""

    prefix: str = ""
    delimiter: str | None = None  # None: a flat namespace (no hierarchy)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The post-login capabilities and the personal namespace."""

    capabilities: frozenset[str]
    namespace: Namespace

    @property
    def idle(self) -> bool:
        return "IDLE" in self.capabilities

    @property
    def move(self) -> bool:
        return "MOVE" in self.capabilities

    @property
    def uidplus(self) -> bool:
        return "UIDPLUS" in self.capabilities


def capabilities(data: Sequence[object]) -> frozenset[str]:
    """Capability names of a CAPABILITY answer (upper case)."""
    last = data[-1] if data else None
    if not isinstance(last, bytes):
        return frozenset()
    text = last[:MAX_ANSWER].decode("ascii", "replace").upper()
    return frozenset(text.split())


def personal_namespace(data: Sequence[object]) -> Namespace | None:
    """The first personal namespace of a NAMESPACE answer (None: none, or unreadable)."""
    first = data[0] if data else None
    if not isinstance(first, bytes):
        return None
    match = _PERSONAL.match(first[:MAX_ANSWER])
    if match is None:
        return None
    prefix = _unescape(match[1])
    delimiter = _unescape(match[2]) if match[2] is not None else None
    return Namespace(prefix, delimiter or None)


def list_delimiter(data: Sequence[object]) -> str | None:
    """The hierarchy delimiter of a ``LIST "" ""`` answer (None: flat namespace)."""
    first = data[0] if data else None
    if not isinstance(first, bytes):
        return None
    match = _LIST_DELIMITER.match(first[:MAX_ANSWER])
    return _unescape(match[1]) if match else None


def _unescape(raw: bytes) -> str:
    return _ESCAPED.sub(rb"\1", raw).decode("utf-8", "replace")


def folder_name(configured: str, namespace: Namespace) -> str:
    """The server's name for ``configured`` (parts separated by ``/``).

    The parts are joined with the server's delimiter and put under the
    personal prefix, unless the name already starts there (``INBOX/x`` on a
    server whose prefix is ``INBOX.``) or the server has no hierarchy.
    """
    parts = [part for part in configured.split("/") if part]
    if not parts or namespace.delimiter is None:
        return configured
    name = namespace.delimiter.join(parts)
    prefix = namespace.prefix
    if not prefix or name.startswith(prefix):
        return name
    if prefix.rstrip(namespace.delimiter).upper() == parts[0].upper():  # "INBOX/x", "inbox/x"
        return prefix + namespace.delimiter.join(parts[1:])
    return prefix + name
