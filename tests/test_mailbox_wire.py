"""The pure wire helpers of the mailbox: FETCH answers, UID sets, dates, delimiters."""

from __future__ import annotations

from datetime import UTC, datetime

from otp_bot.imap.reading import header_fields, is_candidate
from otp_bot.imap.server import list_delimiter
from otp_bot.imap.wire import internal_date, parse, uid_set


def test_parse_fetch_with_literals_and_unsolicited_lines() -> None:
    """Literals, the rest of their line, and FLAGS-only updates are told apart."""
    first = b'1 (UID 7 RFC822.SIZE 12 INTERNALDATE "28-Nov-2026 12:00:00 +0100" BODY[HEADER] {5}'
    data: list[object] = [
        (first, b"From:"),
        b")",
        b"3 (FLAGS (\\Seen))",
        (b"2 (BODY[HEADER] {3}", b"abc"),
        b" UID 9 RFC822.SIZE 40)",
    ]
    items = parse(data)
    assert [(i.uid, i.size, i.literal) for i in items] == [(7, 12, b"From:"), (9, 40, b"abc")]
    assert items[0].internal_date == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert items[1].internal_date is None


def test_uid_set_compresses_runs() -> None:
    """Consecutive UIDs become ranges; order and duplicates do not matter."""
    assert uid_set([5, 1, 2, 3, 3, 9, 10]) == "1:3,5,9:10"
    assert uid_set([4]) == "4"


def test_internal_date_space_padded_day_and_garbage() -> None:
    """A space-padded day parses; garbage is None, not an exception."""
    assert internal_date(" 1-Dec-2026 00:00:00 -0500") == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert internal_date("yesterday") is None


def test_list_delimiter() -> None:
    """The hierarchy delimiter comes from LIST "" ""; NIL means none."""
    assert list_delimiter([b'(\\Noselect) "." ""']) == "."
    assert list_delimiter([b'(\\Noselect) "/" ""']) == "/"
    assert list_delimiter([b'(\\Noselect) NIL ""']) is None


def test_candidate_prefilter_on_from_header() -> None:
    """Only a From at linkedin.com or a subdomain makes a candidate; lookalikes do not."""
    assert is_candidate("LinkedIn <security-noreply@linkedin.com>")
    assert is_candidate("jobs@e.linkedin.com")
    assert not is_candidate("x@linkedin.com.evil.example")
    assert not is_candidate("x@notlinkedin.com")
    assert not is_candidate("")


def test_header_fields_message_id() -> None:
    """From and Message-ID are read from a header block; an absent Message-ID is None."""
    header = b"From: a@linkedin.com\r\nMessage-ID:  <x@y>\r\nSubject: s\r\n\r\n"
    assert header_fields(header) == ("a@linkedin.com", "<x@y>")
    assert header_fields(b"From: a@b\r\n\r\n") == ("a@b", None)
