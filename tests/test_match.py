"""Matching stored e-mail evidence to a waiting draft (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from otp_bot.solve import match as m
from otp_bot.solve.match import StoredEvidence

SINCE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=2)
ORDER = ["link", "pin"]
LINK = "https://www.linkedin.com/psettings/email/confirm?token=abc"


def ev(
    id_: int, minutes: float, code: str | None = None, link: str | None = None
) -> StoredEvidence:
    return StoredEvidence(id_, SINCE + timedelta(minutes=minutes), code, link)


def pick(
    evidence: list[StoredEvidence],
    checkpoint: str = "OTP",
    used: set[str] | None = None,
    remembered: str | None = None,
    order: list[str] | None = None,
) -> m.Candidate | None:
    found = m.candidates(
        evidence,
        checkpoint=checkpoint,
        since=SINCE,
        skew=SKEW,
        order=ORDER if order is None else order,
        remembered=remembered,
    )
    return m.first_unused(found, used or set())


def test_evidence_older_than_since_less_skew_is_never_used() -> None:
    """Mail from before the checkpoint (beyond the skew) belongs to an older one."""
    assert pick([ev(1, -2.5, code="111111")]) is None
    assert pick([ev(1, -10, code="111111")]) is None


def test_race_evidence_within_the_skew_is_used() -> None:
    """Mail received just before the publish answer was recorded still counts."""
    found = pick([ev(1, -1.5, code="123456")])
    assert found == m.Candidate(1, "code", "123456")
    exact = pick([ev(2, -2, code="654321")])
    assert exact is not None
    assert exact.value == "654321"


def test_an_input_is_used_only_once() -> None:
    """A value already sent is skipped, whatever e-mail carries it again."""
    used = {m.input_hash("123456")}
    assert pick([ev(1, 1, code="123456")], used=used) is None
    assert pick([ev(1, 1, code="123456"), ev(2, 0.5, code="777777")], used=used) == m.Candidate(
        2, "code", "777777"
    )


def test_otp_takes_only_a_code() -> None:
    """An OTP checkpoint ignores a link-only e-mail and submits the code form."""
    assert pick([ev(1, 1, link=LINK)]) is None
    assert pick([ev(1, 1, code="123456", link=LINK)]) == m.Candidate(1, "code", "123456")


def test_email_verification_tries_link_then_pin_of_the_same_mail() -> None:
    """Default order: the full link first; once it is burnt, that e-mail's PIN."""
    mail = [ev(1, 1, code="482913", link=LINK)]
    first = pick(mail, "EMAIL_VERIFICATION")
    assert first == m.Candidate(1, "link", LINK)
    second = pick(mail, "EMAIL_VERIFICATION", used={m.input_hash(LINK)})
    assert second == m.Candidate(1, "pin", "482913")
    assert pick(mail, "EMAIL_VERIFICATION", used={first.hash, second.hash}) is None


def test_configured_order_is_followed() -> None:
    """OTP_BOT_VERIFICATION_INPUT_ORDER=pin,link puts the PIN first; pin alone never links."""
    mail = [ev(1, 1, code="482913", link=LINK)]
    assert pick(mail, "EMAIL_VERIFICATION", order=["pin", "link"]).form == "pin"  # type: ignore[union-attr]
    only_pin = pick(mail, "EMAIL_VERIFICATION", used={m.input_hash("482913")}, order=["pin"])
    assert only_pin is None


def test_remembered_form_goes_first_but_only_if_configured() -> None:
    """The form the account last had accepted is tried first, within the configured forms."""
    mail = [ev(1, 1, code="482913", link=LINK)]
    assert pick(mail, "EMAIL_VERIFICATION", remembered="pin").form == "pin"  # type: ignore[union-attr]
    assert m.forms_for("EMAIL_VERIFICATION", ["link"], remembered="pin") == ["link"]
    assert m.forms_for("OTP", ORDER, remembered="link") == ["code"]
    assert m.forms_for("SOMETHING_NEW", ORDER) == []


def test_newest_mail_first_and_all_its_forms_before_older_mail() -> None:
    """The newest e-mail's link and PIN come before an older e-mail's."""
    older = ev(1, 0.5, code="111111", link=LINK + "1")
    newer = ev(2, 3, code="222222", link=LINK + "2")
    found = m.candidates(
        [older, newer], checkpoint="EMAIL_VERIFICATION", since=SINCE, skew=SKEW, order=ORDER
    )
    assert [(c.evidence_id, c.form) for c in found] == [
        (2, "link"),
        (2, "pin"),
        (1, "link"),
        (1, "pin"),
    ]


def test_unstored_evidence_is_not_a_candidate() -> None:
    """Evidence without a store id (0) cannot be recorded as used, so it is never offered."""
    assert pick([ev(0, 1, code="123456")]) is None


def test_deadline_and_window_come_from_since() -> None:
    """The code timeout counts from since, so it survives restarts."""
    assert m.deadline(SINCE, timedelta(minutes=15)) == SINCE + timedelta(minutes=15)
    assert m.window_start(SINCE, SKEW) == SINCE - SKEW


def test_mail_older_than_the_newest_used_one_is_not_a_candidate() -> None:
    """Within the skew, an e-mail received before one the account already used is stale."""
    used_at = SINCE - timedelta(seconds=30)  # the previous checkpoint's e-mail
    late = StoredEvidence(1, used_at - timedelta(seconds=20), "111111", None)  # landed late
    same_second = StoredEvidence(2, used_at, "222222", None)
    found = m.candidates(
        [late, same_second], checkpoint="OTP", since=SINCE, skew=SKEW, order=ORDER,
        newest_used=used_at,
    )  # fmt: skip
    assert [c.value for c in found] == ["222222"]
    assert m.window_start(SINCE, SKEW, used_at) == used_at
    assert m.window_start(SINCE, SKEW, SINCE - timedelta(hours=1)) == SINCE - SKEW
