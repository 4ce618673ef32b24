"""The words every package shares, each defined once here.

The bottom layer: imports nothing of otp-bot, so the pure core, the API
client, the store, the control API and the settings all speak the same
values. Words that belong to one package stay there (draft states:
``solve.drafts.State``; watcher states: ``imap.watcher.WatcherState``).
"""

from __future__ import annotations

from enum import StrEnum


class CheckpointType(StrEnum):
    """What LinkedIn asks for before it publishes (the API's ``type`` field)."""

    # A one-time code, e-mailed to the account.
    OTP = "OTP"
    # Confirm the account's e-mail address: the mail holds a link and a PIN.
    EMAIL_VERIFICATION = "EMAIL_VERIFICATION"


class InputForm(StrEnum):
    """The forms of an input taken from LinkedIn's e-mail."""

    # An OTP checkpoint's code (4 to 8 digits, as a string).
    CODE = "code"
    # An e-mail verification's confirmation URL, HTML-unescaped.
    LINK = "link"
    # An e-mail verification's PIN (read like a code).
    PIN = "pin"


# The forms an EMAIL_VERIFICATION checkpoint accepts (OTP_BOT_VERIFICATION_INPUT_ORDER).
VERIFICATION_FORMS = (InputForm.LINK, InputForm.PIN)


class PublishMode(StrEnum):
    """The publish body's ``mode``."""

    # An unpaid job post (otp-bot's default).
    FREE = "FREE"
    # A promoted post (may carry a ``budget``).
    PROMOTED = "PROMOTED"
    # A promoted post with LinkedIn's extra placement.
    PROMOTED_PLUS = "PROMOTED_PLUS"


class PublishService(StrEnum):
    """The publish body's ``service``."""

    # LinkedIn's ordinary job posting.
    CLASSIC = "CLASSIC"
    # Posting through LinkedIn Recruiter.
    RECRUITER = "RECRUITER"


# Draft ids are short identifiers; the worker refuses longer ones when a draft
# is added, and the API client refuses to send one.
MAX_DRAFT_ID = 200
