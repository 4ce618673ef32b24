"""The golden corpus: every tests/emails/NAME.eml read as NAME.json says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otp_bot.mail.extract import extract

EMAILS = Path(__file__).parent / "emails"
CASES = sorted(EMAILS.glob("*.json"))
_NOT_FIELDS = {"comment", "trusted_authserv_ids"}


def _load(path: Path) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return expected


def test_corpus_is_large_enough() -> None:
    """The corpus keeps at least 40 messages, each with an .eml and a comment."""
    assert len(CASES) >= 40
    for path in CASES:
        assert path.with_suffix(".eml").is_file(), path.name
        assert _load(path).get("comment"), f"{path.name} has no comment naming its quirk"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_reading(path: Path) -> None:
    """Each corpus message yields the expected trust, reason, code, link and headers."""
    expected = _load(path)
    raw = path.with_suffix(".eml").read_bytes()
    trusted_ids = frozenset(expected.get("trusted_authserv_ids", ()))
    got = extract(raw, trusted_authserv_ids=trusted_ids).to_dict()
    wanted = {key: value for key, value in expected.items() if key not in _NOT_FIELDS}
    assert {key: got[key] for key in wanted} == wanted, expected["comment"]


def test_untrusted_mail_never_carries_code_or_link() -> None:
    """An untrusted reading has no code and no link, whatever the mail held."""
    for path in CASES:
        got = extract(path.with_suffix(".eml").read_bytes()).to_dict()
        if not got["trusted"]:
            assert (got["code"], got["link"]) == (None, None), path.name
            assert got["reason"], path.name
