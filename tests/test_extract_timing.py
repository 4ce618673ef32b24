"""The timing fuzzer's inputs, small: every one is read to a verdict without an exception.

bench/fuzz_time.py times the same generator up to the size limits and prints
the slowest input; here only the correctness of the reading is pinned (no
timing assertion): the pre-filter and ``extract`` give a value for each long
run, and the exception guard of ``extract`` is never reached.
"""

from __future__ import annotations

import pytest

from otp_bot.imap.reading import read_header
from otp_bot.mail.extract import Evidence
from tests.emails.timing import PATTERNS, SPOTS, TimingInput, build, inputs, read

SMALL = list(inputs((1024,), to_limit=False))


def test_generator_covers_every_spot_and_pattern() -> None:
    """Each spot gets each pattern (guards against a generator that silently shrank)."""
    assert {(item.spot, item.pattern) for item in SMALL} == {
        (spot, pattern) for spot in SPOTS for pattern in PATTERNS
    }
    assert all(len(item.raw) > 1024 for item in SMALL)


@pytest.mark.parametrize("spot", SPOTS)
def test_every_long_run_gets_a_verdict(spot: str) -> None:
    """Every 1 KB run in this spot yields an Evidence, never the extract_failed guard."""
    for item in (i for i in SMALL if i.spot == spot):
        evidence = read(item.raw)
        assert isinstance(evidence, Evidence), item.label
        assert not (evidence.reason or "").startswith("extract_failed"), item.label
        assert evidence.trusted is False or evidence.sender is not None, item.label


def test_pre_filter_refuses_deeply_nested_from_without_raising() -> None:
    """Deeply nested comments in From are refused by trust.parse_sender's nesting cap,
    before the stdlib parser could recurse: not a candidate, and nothing raised."""
    header = read_header(build("from", "(", 1024))
    assert header.unreadable is None
    assert header.candidate is False


def test_genuine_mail_in_the_generator_is_trusted() -> None:
    """A run in a harmless spot leaves the mail readable: the generator's base mail is real."""
    item = TimingInput("text", "a", 1024, build("text", "a", 1024))
    evidence = read(item.raw)
    assert (evidence.trusted, evidence.code) == (True, "482913")
