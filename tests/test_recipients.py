"""Whose e-mail is it: the To header read (bounded), routed, and the shared-mailbox checks."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from otp_bot.config import Settings
from otp_bot.daemon.mailboxes import check_shared
from otp_bot.errors import ConfigError
from otp_bot.mail.recipients import MAX_RECIPIENTS, Recipients, owner, read_recipients

TEAM = {"acc_a": frozenset({"a@team.example"}), "acc_b": frozenset({"b@team.example"})}


def mail(*headers: str, body: str = "Your code is 123456") -> bytes:
    return ("\r\n".join([*headers, "From: security-noreply@linkedin.com", "", body])).encode()


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("A@Team.Example", {"a@team.example"}),
        ('"Souza, Ana" <a@team.example>', {"a@team.example"}),
        ("Ana <a@team.example>, b@team.example", {"a@team.example", "b@team.example"}),
        ("undisclosed-recipients:;", set()),
    ],
)
def test_to_addresses_are_read_lower_cased(to: str, expected: set[str]) -> None:
    """Display names, quoted commas, several addresses and groups give the plain addresses."""
    assert read_recipients(mail(f"To: {to}")).addresses == expected


def test_to_is_authoritative_and_envelope_headers_are_ignored() -> None:
    """Delivered-To / X-Original-To (the SMTP envelope, chosen by whoever sends) never route."""
    raw = mail("Delivered-To: a@team.example", "X-Original-To: a@team.example", "To: c@x.example")
    assert owner(read_recipients(raw), TEAM) == (None, "not_addressed_here")
    assert owner(read_recipients(mail("Delivered-To: a@team.example")), TEAM) == (None, "no_to")


def test_a_second_to_header_counts_for_nobody() -> None:
    """A To added above a (signed) To is what a re-sent genuine mail looks like: nobody's."""
    raw = mail("To: a@team.example", "To: b@team.example")
    assert owner(read_recipients(raw), TEAM) == (None, "several_to_headers: 2")


def test_routing_table() -> None:
    """Exactly one account named: its mail; none or two: nobody's; a lone catch-all: all."""
    assert owner(Recipients(frozenset({"b@team.example"})), TEAM) == ("acc_b", "addressed")
    both = Recipients(frozenset({"a@team.example", "b@team.example"}))
    assert owner(both, TEAM) == (None, "addressed_to_several_accounts")
    assert owner(Recipients(frozenset(), "no_to"), {"solo": frozenset()}) == (
        "solo",
        "sole_account",
    )
    mine = {"solo": frozenset({"a@team.example"})}
    assert owner(Recipients(frozenset({"x@team.example"})), mine) == (None, "not_addressed_here")


def test_oversized_to_headers_count_for_nobody_without_parsing() -> None:
    """A huge To, or one naming more than MAX_RECIPIENTS addresses, is refused as such."""
    many = ", ".join(f"u{n}@team.example" for n in range(MAX_RECIPIENTS + 1))
    assert read_recipients(mail(f"To: {many}")).problem == "too_many_recipients"
    assert read_recipients(mail("To: " + "x" * 100_000 + "@a.example")).problem == "to_too_long"


def test_hostile_header_blocks_never_raise() -> None:
    """Random bytes around To headers (quotes, brackets, NULs, folding) give a value, never
    an exception; the result is always a Recipients."""
    rng = random.Random(13)
    alphabet = [*b'<>@",;:()\\ \t\r\n\x00abc.=?', 0xFF, 0xC3]
    for _ in range(2000):
        junk = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 300)))
        found = read_recipients(b"To: " + junk + b"\r\n\r\nbody")
        assert isinstance(found, Recipients)
        assert all("@" in address for address in found.addresses)


def settings(account_id: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "account_id": account_id,
        "api_key": "k" * 20,
        "imap_host": "imap.team.example",
        "imap_user": "recruiting@team.example",
        "imap_password": "pw",
        "state_dir": Path("/tmp/state"),
        **overrides,
    }
    return Settings(**values)


def test_two_accounts_on_one_mailbox_need_distinct_recipients() -> None:
    """Without recipients, or with an address named twice, the daemon refuses to start."""
    with pytest.raises(ConfigError, match="each must name its own"):
        check_shared([settings("a"), settings("b", mail_recipients="b@team.example")])
    with pytest.raises(ConfigError, match=r"both name b@team\.example"):
        check_shared(
            [
                settings("a", mail_recipients="a@team.example,B@team.example"),
                settings("b", mail_recipients="b@team.example"),
            ]
        )
    check_shared(  # distinct: fine; another folder is another mailbox
        [
            settings("a", mail_recipients="a@team.example"),
            settings("b", mail_recipients="b@team.example"),
            settings("c", imap_folder="LinkedIn"),
        ]
    )


def test_accounts_sharing_a_connection_must_agree_on_its_settings() -> None:
    """One watcher serves them, so different IMAP settings (a password) are refused by name."""
    with pytest.raises(ConfigError, match="OTP_BOT_IMAP_PASSWORD"):
        check_shared(
            [
                settings("a", mail_recipients="a@team.example"),
                settings("b", mail_recipients="b@team.example", imap_password="other"),
            ]
        )


def test_recipients_setting_is_validated() -> None:
    """OTP_BOT_MAIL_RECIPIENTS takes comma-separated addresses, lower-cased, deduplicated."""
    assert settings(
        "a", mail_recipients=" A@x.example, a@x.example ,b@y.example"
    ).mail_recipients == [
        "a@x.example",
        "b@y.example",
    ]
    with pytest.raises(ValueError, match="e-mail addresses"):
        settings("a", mail_recipients="not-an-address")
