"""LinkedIn's side of a checkpoint, for the simulator: compose the e-mail, APPEND it.

The genuine mails follow LinkedIn's real ones (``security-noreply@linkedin.com``,
multipart/alternative, table-heavy HTML, a footer full of digits that are not
codes) and carry a topmost ``Authentication-Results`` header with
``dkim=pass``/``dmarc=pass`` for linkedin.com, as the receiving server would
write it. A decoy imitates them, either from a look-alike domain whose topmost header
fails, with a forged passing header further down (RFC 8601 7.2 says lower
headers prove nothing), or from linkedin.com itself without a passing
DKIM/DMARC result, or a genuinely signed LinkedIn message notification
(``messages-noreply@linkedin.com``, passing DKIM and DMARC) whose member text
carries a code: only the verification allowlists refuse that one.

Delivery uses the standard library's imaplib in a thread (only
``otp_bot.imap`` may import imap-tools).

(Over 250 lines: LinkedIn's genuine and decoy templates and their trace
headers, written out as the real mails look.)
"""

from __future__ import annotations

import contextlib
import imaplib
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import partial
from html import escape
from pathlib import Path

from otp_bot.config import Settings

GENUINE_SENDER = "LinkedIn <security-noreply@linkedin.com>"
DECOY_SENDER = '"security-noreply@linkedin.com" <security-noreply@linkedin-mail-security.com>'
MEMBER_SENDER = "Bruno Lima via LinkedIn <messages-noreply@linkedin.com>"
DECOYS = ("lookalike", "unsigned", "member")
CONFIRM_URL = "https://www.linkedin.com/psettings/email/confirm"
_FOOTER = (
    "This email was intended for you. Learn why we included this: "
    "https://www.linkedin.com/help/linkedin/answer/4788\n"
    "You are receiving LinkedIn notification emails.\n"
    "Unsubscribe: https://www.linkedin.com/comm/psettings/email-unsubscribe?lipi=urn%3Ali\n"
    "© 2026 LinkedIn Corporation, 1000 West Maude Avenue, Sunnyvale, CA 94085.\n"
    "LinkedIn and the LinkedIn logo are registered trademarks of LinkedIn.\n"
)


@dataclass(frozen=True, slots=True)
class MailTarget:
    """The IMAP account the simulator delivers LinkedIn's mail to."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    security: str = "none"  # tls | starttls | none, as OTP_BOT_IMAP_SECURITY
    folder: str = "INBOX"
    ca_file: Path | None = None
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> MailTarget:
        if settings.imap_password is None:
            raise ValueError("the simulator delivers mail with OTP_BOT_IMAP_PASSWORD (no OAuth2)")
        return cls(
            host=settings.imap_host,
            port=settings.imap_port,
            user=settings.imap_user,
            password=settings.imap_password.get_secret_value(),
            security=settings.imap_security.value,
            folder=settings.imap_folder,
            ca_file=settings.imap_ca_file,
            timeout=float(settings.imap_timeout),
        )


@dataclass(slots=True, eq=False)
class LinkedinMail:
    """One composed e-mail and what it carries.

    Its bytes are rendered at the first ``raw``: the simulator asks on its
    delivery thread, so a storm of checkpoints (a few ms of MIME work each)
    does not stall the event loop that answers the API.
    """

    message_id: str
    code: str  # the OTP, or the PIN of an e-mail confirmation
    link: str | None  # the confirmation link (EMAIL_VERIFICATION only)
    genuine: bool
    _render: Callable[[], bytes] = field(repr=False)
    _raw: bytes | None = field(default=None, repr=False)

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = self._render()
        return self._raw


def new_code() -> str:
    """A fresh 6-digit code; leading zeros are kept (it is a string)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def new_link() -> str:
    return f"{CONFIRM_URL}?token={secrets.token_urlsafe(24)}&trk=eml-email_confirm&lipi=urn%3Ali"


def compose(
    checkpoint_type: str, to: str, now: datetime, *, authserv_id: str, decoy: str | None = None
) -> LinkedinMail:
    """A LinkedIn e-mail for an OTP or EMAIL_VERIFICATION checkpoint, fresh code included.

    ``decoy``: None for the genuine mail; ``"lookalike"`` (a look-alike sender
    domain), ``"unsigned"`` (linkedin.com in From, but no passing DKIM/DMARC) or
    ``"member"`` (a member's message notification carrying a code, DKIM and
    DMARC passing).
    """
    if decoy not in (None, *DECOYS):
        raise ValueError(f"decoy must be one of {DECOYS}")
    code = new_code()
    link = new_link() if checkpoint_type == "EMAIL_VERIFICATION" else None
    domain = "linkedin-mail-security.com" if decoy == "lookalike" else "linkedin.com"
    message_id = make_msgid(domain=f"ltx1-app{secrets.randbelow(9999)}.prod")
    render = partial(
        _render, code=code, link=link, to=to, now=now, authserv_id=authserv_id, decoy=decoy,
        domain=domain, message_id=message_id,
    )  # fmt: skip
    return LinkedinMail(message_id, code, link, decoy is None, render)


def _render(
    *,
    code: str,
    link: str | None,
    to: str,
    now: datetime,
    authserv_id: str,
    decoy: str | None,
    domain: str,
    message_id: str,
) -> bytes:
    subject, text = _member_message(code) if decoy == "member" else _subject_and_text(code, link)
    msg = EmailMessage(policy=SMTP)
    signed = decoy in (None, "member")
    for name, value in _trace_headers(domain, now, authserv_id, None if signed else decoy):
        msg[name] = value
    senders = {"lookalike": DECOY_SENDER, "member": MEMBER_SENDER}
    msg["From"] = senders.get(decoy or "", GENUINE_SENDER)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["X-LinkedIn-Class"] = _linkedin_class(link, decoy)
    msg["X-LinkedIn-Template"] = _template(link, decoy)
    msg.set_content(text + "\n" + _FOOTER, cte="quoted-printable")
    msg.add_alternative(_html(code, link), subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def _linkedin_class(link: str | None, decoy: str | None) -> str:
    if decoy == "member":
        return "MBR-TO-MBR"
    return "SECURITY" if link is None else "EMAIL-CONFIRM"


def _template(link: str | None, decoy: str | None) -> str:
    if decoy == "member":
        return "email_messaging_digest_01"
    return "email_security_verification_pin_01" if link is None else "email_confirm_email_pin_01"


def _member_message(code: str) -> tuple[str, str]:
    """A member's message as LinkedIn relays it: the member wrote the code."""
    return (
        f"Bruno just messaged you: your verification code is {code}",
        f"Bruno Lima sent you a message:\n\nHi! Your verification code: {code}\n"
        "Please enter it on the job post so we can go ahead.\n\n"
        "View message: https://www.linkedin.com/comm/messaging/thread/2-YTk3ZjM/\n",
    )


def _subject_and_text(code: str, link: str | None) -> tuple[str, str]:
    if link is None:
        subject = f"Your LinkedIn verification code is {code}"
        text = (
            f"Hi there,\n\nHere's your verification code: {code}\n\n"
            "Enter it to finish posting your job. This code expires in 15 minutes.\n"
            "If you didn't request this, you can ignore this email.\n\nThanks,\nThe LinkedIn Team\n"
        )
    else:
        subject = "Please confirm your email address"
        text = (
            "Hi there,\n\nConfirm your email address to finish posting your job.\n\n"
            f"Confirm your email: {link}\n\nOr enter this PIN: {code}\n\n"
            "The link and the PIN expire in 15 minutes.\n\nThanks,\nThe LinkedIn Team\n"
        )
    return subject, text


def _trace_headers(
    domain: str, now: datetime, authserv_id: str, decoy: str | None
) -> list[tuple[str, str]]:
    selector = f"d2048-{secrets.randbelow(3) + 1}"
    received = (
        f"from mail-sa-{secrets.randbelow(99)}.{domain} "
        f"(mail-sa.{domain} [108.174.3.{secrets.randbelow(250)}]) "
        f"by {authserv_id} with ESMTPS id {secrets.token_hex(6)}; {format_datetime(now)}"
    )
    if decoy is None:
        results = (
            f"{authserv_id}; dkim=pass header.d=linkedin.com header.s={selector} "
            f"header.b={secrets.token_urlsafe(6)}; spf=pass (domain of s-{secrets.token_hex(4)}"
            "@bounce.linkedin.com designates 108.174.3.1 as permitted sender) "
            "smtp.mailfrom=bounce.linkedin.com; dmarc=pass (p=REJECT) header.from=linkedin.com"
        )
        return [("Authentication-Results", results), ("Received", received)]
    failed = (
        f"{authserv_id}; dkim=none; spf=softfail smtp.mailfrom={domain}; "
        f"dmarc=fail (p=REJECT) header.from={domain}"
    )
    if decoy == "unsigned":
        return [("Authentication-Results", failed), ("Received", received)]
    forged = "mx.linkedin.com; dkim=pass header.d=linkedin.com; dmarc=pass header.from=linkedin.com"
    return [
        ("Authentication-Results", failed),
        ("Received", received),
        ("Authentication-Results", forged),  # below ours: proves nothing (RFC 8601 7.2)
    ]


def _html(code: str, link: str | None) -> str:
    if link is None:
        action = (
            '<p style="margin:0;font-size:16px">Here\'s your verification code:</p>'
            f'<p style="font-size:32px;font-weight:600;letter-spacing:4px">{code}</p>'
        )
    else:
        action = (
            '<p style="margin:0">Confirm your email address to finish posting your job.</p>'
            f'<a href="{escape(link)}" style="background:#0a66c2;color:#fff;padding:10px 24px;'
            'border-radius:24px">Confirm your email</a>'
            f"<p>Or enter this PIN: <strong>{code}</strong></p>"
        )
    return (
        "<!DOCTYPE html><html><body>"
        '<table role="presentation" width="100%"><tr><td align="center">'
        '<table width="512"><tr><td><img src="https://static.licdn.com/aero-v1/sc/h/logo.png" '
        'alt="LinkedIn" width="84" height="21"></td></tr>'
        f"<tr><td>{action}"
        "<p>This code expires in 15 minutes.</p></td></tr>"
        '<tr><td style="font-size:12px;color:#666">'
        '<a href="https://www.linkedin.com/help/linkedin/answer/4788">Help</a> · '
        '<a href="https://www.linkedin.com/comm/psettings/email-unsubscribe?lipi=urn%3Ali">'
        "Unsubscribe</a><br>© 2026 LinkedIn Corporation, 1000 West Maude Avenue, "
        "Sunnyvale, CA 94085.</td></tr></table></td></tr></table></body></html>"
    )


class DeliveryError(Exception):
    """The mail could not be APPENDed (connection, login or APPEND refused)."""


def append(target: MailTarget, raw: bytes) -> None:
    """APPEND one message to the target folder (blocking: run it in a thread)."""
    try:
        conn = _connect(target)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise DeliveryError(f"cannot reach {target.host}:{target.port}: {exc}") from None
    try:
        conn.login(target.user, target.password)
        typ, data = conn.append(target.folder, "", imaplib.Time2Internaldate(time.time()), raw)
        if typ != "OK":
            raise DeliveryError(f"APPEND refused: {data!r:.200}")
    except (imaplib.IMAP4.error, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


def _connect(target: MailTarget) -> imaplib.IMAP4:
    if target.security == "tls":
        context = ssl.create_default_context(cafile=target.ca_file)
        return imaplib.IMAP4_SSL(
            target.host, target.port, ssl_context=context, timeout=target.timeout
        )
    conn = imaplib.IMAP4(target.host, target.port, timeout=target.timeout)
    if target.security == "starttls":
        conn.starttls(ssl.create_default_context(cafile=target.ca_file))
    return conn
