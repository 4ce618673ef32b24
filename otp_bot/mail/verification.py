"""Which of LinkedIn's mails are its own verification mail (docs/trust.md).

Authentic is not enough: LinkedIn signs mail that carries text its members
wrote (messages, InMail, invitations, applications, comments, group posts,
newsletters). A code or link is read only from a mail that passes all three
allowlists below; anything else says why, as ``not_a_verification_mail: ...``.

1. The sender. ``security-noreply@linkedin.com`` sends the sign-in PIN ("Ana,
   here's your PIN", "Please use this verification code to complete your sign
   in: NNNNNN"), the e-mail confirmation ("Ana, your pin is NNNNNN. Please
   confirm your email address." with a /comm/psettings/email/confirm link) and
   the work e-mail verification code; ``hiring-noreply@linkedin.com`` sends the
   job poster's e-mail verification (``HIRING_TEMPLATE``). Sources: public
   LinkedIn login and sign-up automation (IMAP searches on
   ``FROM security-noreply@linkedin.com``, subject patterns quoted above) and
   rebuilt real mail; docs/trust.md lists them.
2. The template headers, when present. ``X-LinkedIn-Template`` must name a
   verification family (``_TEMPLATE_RE``) and ``X-LinkedIn-Class`` must be a
   class such mail carries (``_CLASS_RE``); member channels (INMAIL,
   MBR-TO-MBR, INVITE-GUEST, SAVEDSEARCH, ...) never pass.
3. The subject: a verification subject in one of the 16 languages LinkedIn
   writes (``_SUBJECT_RE``); sign-in alerts and password resets from the same
   sender are not verification mail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Sender address -> the template families it may send.
SECURITY_SENDER = "security-noreply@linkedin.com"
HIRING_SENDER = "hiring-noreply@linkedin.com"
VERIFICATION_SENDERS = (SECURITY_SENDER, HIRING_SENDER)
# What the member-channel senders are, for a clearer reason (any other sender
# is refused all the same).
_CHANNELS = {
    "messages-noreply": "member messages",
    "messaging-digest-noreply": "member messages",
    "inmail-hit-reply": "InMail",
    "invitations": "invitations",
    "invitations-noreply": "invitations",
    "notifications-noreply": "notifications",
    "jobalerts-noreply": "job alerts",
    "jobs-listings": "job alerts",
    "jobs-noreply": "job applications",
    "newsletters-noreply": "newsletters",
    "editors-noreply": "newsletters",
    "groups-noreply": "groups",
    "comments-noreply": "comments",
    "updates-noreply": "notifications",
}
# A job poster's e-mail verification is the hiring sender's only verification mail.
HIRING_TEMPLATE = re.compile(r"verif|confirm|bestätig|vérif|verific|bevestig", re.IGNORECASE)

_TEMPLATE_RE = re.compile(
    r"[a-z0-9_]*?(?:verification|verify|confirm|pin|challenge|two_step|otp)[a-z0-9_]*+",
    re.IGNORECASE,
)
_TEMPLATE_REFUSED_RE = re.compile(
    r"messag|inmail|invit|job_alert|jobs_|application|newsletter|digest|comment|group|"
    r"password|reset|notification|editorial|mention",
    re.IGNORECASE,
)
_CLASS_RE = re.compile(
    r"email-default|security[a-z0-9-]*+|[a-z0-9-]*?(?:confirm|verif|pin|challenge)[a-z0-9-]*+",
    re.IGNORECASE,
)
# Verification words in subjects, en de fr es pt it nl sv da nb pl tr ja zh ko.
_SUBJECT_RE = re.compile(
    r"\bcode\b|\bpin\b|passcode|one-time|verif|vérif|confirm|bestätig|sicherheitscode|"
    r"c[oó]digo|codice|conferm|bevestig|\bkod|\bkode|bekräft|bekræft|bekreft|pinkode|"
    r"weryfik|potwierd|doğrula|onay|kodu|"
    r"コード|確認|認証|验证码|驗證碼|验证|驗證|确认|代码|인증|코드|확인",
    re.IGNORECASE,
)
# Same sender, not verification: sign-in alerts, password resets.
_SUBJECT_REFUSED_RE = re.compile(
    r"reset|password|passwort|mot de passe|contraseña|senha|new sign-in|neue anmeldung",
    re.IGNORECASE,
)


def refusal(sender: str, subject: str, headers: Sequence[tuple[str, str]]) -> str | None:
    """Why this authentic LinkedIn mail is not one of its verification mails, or None."""
    address = sender.lower()
    if address not in VERIFICATION_SENDERS:
        local = address.partition("@")[0]
        channel = _CHANNELS.get(local)
        what = f" ({channel})" if channel else ""
        return f"not_a_verification_mail: sender {address}{what} never sends codes"
    for name, value in headers:
        lowered = name.lower()
        if lowered == "x-linkedin-template" and not _template_allowed(value.strip()):
            return f"not_a_verification_mail: template {value.strip()[:60]}"
        if lowered == "x-linkedin-class" and not _CLASS_RE.fullmatch(value.strip()):
            return f"not_a_verification_mail: class {value.strip()[:60]}"
    if not _SUBJECT_RE.search(subject) or _SUBJECT_REFUSED_RE.search(subject):
        return "not_a_verification_mail: subject is not a verification subject"
    if address == HIRING_SENDER and not HIRING_TEMPLATE.search(subject):
        return "not_a_verification_mail: hiring mail other than e-mail verification"
    return None


def _template_allowed(name: str) -> bool:
    return _TEMPLATE_RE.fullmatch(name) is not None and not _TEMPLATE_REFUSED_RE.search(name)
