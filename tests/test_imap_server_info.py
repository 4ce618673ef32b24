"""Reading what a server says about itself: capabilities, NAMESPACE, folder names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otp_bot.config import MailAction
from otp_bot.imap.actions import effective
from otp_bot.imap.server import (
    Namespace,
    ServerInfo,
    capabilities,
    folder_name,
    list_delimiter,
    personal_namespace,
)

COURIER = Namespace("INBOX.", ".")
DOVECOT = Namespace("", ".")
GMAIL = Namespace("", "/")


def test_capabilities_take_the_last_answer_upper_cased() -> None:
    """imaplib may hold the login's CAPABILITY code first; the CAPABILITY answer is last."""
    data = [b"IMAP4rev1 IDLE", b"IMAP4rev1 idle Move UIDPLUS"]
    assert capabilities(data) == {"IMAP4REV1", "IDLE", "MOVE", "UIDPLUS"}
    assert capabilities([]) == frozenset()
    assert capabilities([None]) == frozenset()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b'(("INBOX." ".")) NIL (("#shared." ".")("shared." "."))', COURIER),  # Courier
        (b'(("" ".")) NIL NIL', DOVECOT),  # Dovecot, Maildir++
        (b'(("" "/")) NIL NIL', GMAIL),  # Gmail, Microsoft 365, Fastmail
        (b'(("INBOX/" "/")) (("user/" "/")) (("" "/"))', Namespace("INBOX/", "/")),  # Cyrus
        (b'(("" NIL)) NIL NIL', Namespace("", None)),  # flat
        (b'(("a\\"b." "."))', Namespace('a"b.', ".")),  # an escaped quote
        (b'(( "INBOX." "." "X-PARAM" ("y"))) NIL NIL', COURIER),  # extension data
    ],
)
def test_personal_namespace(answer: bytes, expected: Namespace) -> None:
    """The first personal namespace of real servers' NAMESPACE answers."""
    assert personal_namespace([answer]) == expected


@pytest.mark.parametrize("answer", [b"NIL NIL NIL", b"", b"garbage", b'(("unterminated'])
def test_personal_namespace_absent_or_unreadable(answer: bytes) -> None:
    """No personal namespace, or nonsense: None (the caller falls back to LIST)."""
    assert personal_namespace([answer]) is None
    assert personal_namespace([None]) is None


def test_hostile_namespace_answer_is_refused() -> None:
    """Backslashes, quotes and parentheses by the megabyte read as no namespace, no delimiter.

    (Their cost is linear by construction; a quadratic reading would hit the test timeout.)
    """
    for evil in (b'(("' + b"\\" * 1_000_000, b'(("' + b'\\"' * 500_000, b"(" * 1_000_000):
        assert personal_namespace([evil]) is None
        assert list_delimiter([evil]) is None


def test_list_delimiter() -> None:
    """The delimiter of a LIST "" "" answer, escaped or not; NIL means flat."""
    assert list_delimiter([b'(\\Noselect) "/" ""']) == "/"
    assert list_delimiter([b'(\\Noselect) "\\\\" ""']) == "\\"
    assert list_delimiter([b'(\\Noselect) NIL ""']) is None


@pytest.mark.parametrize(
    ("configured", "namespace", "expected"),
    [
        ("otp-bot/used", COURIER, "INBOX.otp-bot.used"),
        ("otp-bot/used", DOVECOT, "otp-bot.used"),
        ("otp-bot/used", GMAIL, "otp-bot/used"),
        ("INBOX/otp-bot", COURIER, "INBOX.otp-bot"),
        ("inbox/otp-bot", COURIER, "INBOX.otp-bot"),
        ("INBOX.otp-bot", COURIER, "INBOX.otp-bot"),
        ("otp-bot/used", Namespace("INBOX/", "/"), "INBOX/otp-bot/used"),
        ("/otp-bot//used/", GMAIL, "otp-bot/used"),
        ("otp-bot/used", Namespace("", None), "otp-bot/used"),
        ("Archive", COURIER, "INBOX.Archive"),
    ],
)
def test_folder_name(configured: str, namespace: Namespace, expected: str) -> None:
    """The configured ``a/b`` becomes the server's name, under its personal prefix."""
    assert folder_name(configured, namespace) == expected


@given(st.text(max_size=60), st.sampled_from([COURIER, DOVECOT, GMAIL]))
def test_folder_name_never_leaves_the_personal_namespace(configured: str, ns: Namespace) -> None:
    """Whatever is configured, a hierarchical name lands under the personal prefix."""
    name = folder_name(configured, ns)
    if any(configured.split("/")):
        assert name.startswith(ns.prefix)


@pytest.mark.parametrize(
    ("caps", "action", "expected"),
    [
        ({"MOVE", "UIDPLUS"}, MailAction.MOVE, MailAction.MOVE),
        ({"UIDPLUS"}, MailAction.MOVE, MailAction.MOVE),
        ({"MOVE"}, MailAction.MOVE, MailAction.MOVE),
        (set(), MailAction.MOVE, MailAction.SEEN),
        ({"MOVE"}, MailAction.DELETE, MailAction.SEEN),
        ({"UIDPLUS"}, MailAction.DELETE, MailAction.DELETE),
        (set(), MailAction.SEEN, MailAction.SEEN),
        (set(), MailAction.LEAVE, MailAction.LEAVE),
    ],
)
def test_effective_action(caps: set[str], action: MailAction, expected: MailAction) -> None:
    """Without a way to remove one message alone, move and delete become seen."""
    assert effective(action, ServerInfo(frozenset(caps), DOVECOT)) is expected
