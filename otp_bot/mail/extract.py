"""Raw RFC 822 bytes in, an ``Evidence`` value out: the pure heart of the mail path.

No I/O, no clock, no settings: the mailbox watcher passes the bytes, the
operator's trusted authserv-ids, the DKIM mode and (for ``self``/``both``) a
key lookup answered from the shell's cache; the solver judges the result.
The steps: ``mime.read_mail`` (bounded decoding) → ``trust`` (headers that
appear once, sender, Authentication-Results) and/or ``dkim`` (LinkedIn's
signature checked here) → ``verification`` (only LinkedIn's own
verification mail is read) → ``codes`` (code and verification link), reading
the subject first, then plain-text parts, then flattened HTML for whatever
the text parts lack.

(Over 250 lines: the pipeline's steps, its ``Evidence`` and ``Checks`` values
and the forward detection read together.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from otp_bot.mail import dkim
from otp_bot.mail.codes import find_code
from otp_bot.mail.flatten import flatten_html, tidy_text
from otp_bot.mail.links import find_link, names_verification_page, urls_in
from otp_bot.mail.mime import Mail, read_mail
from otp_bot.mail.trust import (
    auth_trace,
    authentication_verdict,
    domain_is_linkedin,
    parse_sender,
    repeated_header,
)
from otp_bot.mail.verification import refusal
from otp_bot.terminal import printable

# Forward prefixes in en, pt, fr, de, es, nl, it (and Outlook's "FW").
_FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:fwd?|tr|wg|rv|enc|i|doorst|vs|rif|inoltro)\s*:", re.I)
# How much plain text is read, over all plain parts: LinkedIn's code and link
# sit in the first few KB, and every pass over text costs time in proportion.
# A forward's quote marker only matters before the code, so it is looked for
# in the same text.
_MAX_TEXT_CHARS = 64 * 1024
# Searched in lower-cased text. A dash run is matched from its first dash only
# (the lookbehind) and possessively: without both, a long run of dashes costs
# time quadratic in its length. The leading literal "-" lets the regex engine
# skip to the next dash at C speed.
_FORWARD_DASHES_RE = re.compile(
    r"-(?<!--)-++\s*+(?:forwarded message|original message|mensagem encaminhada|"
    r"message transféré|weitergeleitete nachricht|mensaje reenviado|mensaje original|"
    r"doorgestuurd bericht|messaggio inoltrato|messaggio originale)"
)
_FORWARD_BEGIN = "begin forwarded message"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one e-mail offers the solver; code and link only when the mail is trusted."""

    sender: str | None
    trusted: bool
    reason: str | None
    code: str | None
    link: str | None
    received_at: datetime | None
    message_id: str | None
    subject: str
    # The bot's own DKIM check: "pass", why it failed, or None when not run.
    dkim: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, as ``otp-bot extract --json`` prints them."""
        return {
            "trusted": self.trusted,
            "code": self.code,
            "link": self.link,
            "sender": self.sender,
            "reason": self.reason,
            "subject": self.subject,
            "message_id": self.message_id,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "dkim": self.dkim,
        }

    def summary(self) -> str:
        """A few lines for people running ``otp-bot extract FILE``; text from the mail is
        escaped, so control characters cannot redraw the terminal (``otp_bot.terminal``)."""
        verdict = "trusted" if self.trusted else "NOT trusted"
        received = self.received_at.isoformat() if self.received_at else "(unknown)"
        lines = [
            f"from:     {printable(self.sender or '(none)')} ({verdict})",
            f"subject:  {printable(self.subject or '(none)')}",
            f"received: {received}",
            f"code:     {printable(self.code or '-')}",
            f"link:     {printable(self.link or '-')}",
        ]
        if self.reason:
            lines.append(f"reason:   {printable(self.reason)}")
        if self.dkim:
            lines.append(f"dkim:     {printable(self.dkim)}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Checks:
    """How authenticity is decided (OTP_BOT_DKIM_VERIFY, as plain values).

    server: ``server_results`` and no ``dkim_keys``; self: only ``dkim_keys``;
    both: the two.
    """

    trusted_authserv_ids: frozenset[str] = frozenset()
    server_results: bool = True  # the receiving server's Authentication-Results must vouch
    dkim_keys: dkim.KeyLookup | None = None  # set: LinkedIn's signature is verified here too


def extract(
    raw: bytes,
    *,
    trusted_authserv_ids: frozenset[str] = frozenset(),
    server_results: bool = True,
    dkim_keys: dkim.KeyLookup | None = None,
) -> Evidence:
    """Read one e-mail: who sent it, whether to trust it, and its code and link."""
    try:
        return _extract(raw, Checks(trusted_authserv_ids, server_results, dkim_keys))
    except Exception as exc:  # noqa: BLE001 - last line of defence: hostile mail gives a value
        # tests/test_extract_hostile.py asserts this line is never reached.
        reason = f"extract_failed: {type(exc).__name__}"
        return Evidence(None, False, reason, None, None, None, None, "")


def _extract(raw: bytes, checks: Checks) -> Evidence:
    mail = read_mail(raw)
    sender = _sender(mail.from_headers)
    reason = _distrust(mail, sender)
    if reason is not None or sender is None:
        return _evidence(mail, sender, reason=reason or "unreadable_from")
    reason, own_dkim = _authenticity(raw, mail, checks)
    if reason is not None:
        return _evidence(mail, sender, reason=reason, dkim=own_dkim)
    reason = refusal(sender, mail.subject, mail.headers)
    if reason is not None:
        return _evidence(mail, sender, reason=reason, trusted=True, dkim=own_dkim)
    code, link = _read_code_and_link(mail)
    reason = None if code or link else "no_code_or_link"
    return _evidence(mail, sender, reason=reason, trusted=True, code=code, link=link, dkim=own_dkim)


def _authenticity(raw: bytes, mail: Mail, checks: Checks) -> tuple[str | None, str | None]:
    """(why LinkedIn's authorship is not proven or None, the own DKIM check's outcome)."""
    if checks.server_results:
        verdict = authentication_verdict(auth_trace(mail.headers), checks.trusted_authserv_ids)
        if verdict is not None:
            return verdict, None
    if checks.dkim_keys is None:
        return (None if checks.server_results else "dkim_self: no key lookup"), None
    failed = dkim.verify(raw, mail.headers, checks.dkim_keys)
    return failed, failed or "pass"


def _sender(from_headers: tuple[str, ...]) -> str | None:
    """The one From address, or None (absent, several, or unreadable)."""
    if len(from_headers) != 1:
        return None
    try:
        return parse_sender(from_headers[0])
    except Exception:  # noqa: BLE001 - e.g. RecursionError on deeply nested comments
        return None


def _distrust(mail: Mail, sender: str | None) -> str | None:
    """Why this mail must not be acted on before its authentication is looked at, or None."""
    count = len(mail.from_headers)
    if count > 1:
        return f"ambiguous_from: {count} From headers"
    repeated = repeated_header([name for name, _ in mail.headers])
    if repeated is not None:
        return f"repeated_header: {repeated}"
    if sender is None:
        return "unreadable_from" if count == 1 else "no_from_address"
    domain = sender.rpartition("@")[2]
    forwarded = _forward_sign(mail)
    if forwarded is not None:
        return f"forwarded: {forwarded} from {domain}"
    if not domain_is_linkedin(domain):
        return f"sender_not_linkedin: from {domain}"
    return None


def _forward_sign(mail: Mail) -> str | None:
    if _FORWARD_SUBJECT_RE.match(mail.subject):
        return "subject prefix"
    if mail.attached_message:
        return "attached message"
    # The plain part says what the HTML says; HTML is searched only without one.
    if any(_quotes_a_message(text) for text in _within(mail.plain) or mail.html):
        return "quoted message"
    return None


def _quotes_a_message(text: str) -> bool:
    lowered = text.lower()
    if _FORWARD_BEGIN in lowered:
        return True
    return "--" in lowered and _FORWARD_DASHES_RE.search(lowered) is not None


def _within(texts: tuple[str, ...], budget: int = _MAX_TEXT_CHARS) -> list[str]:
    """The first ``budget`` characters of ``texts``, in order, cut at the budget."""
    kept: list[str] = []
    for text in texts:
        if budget <= 0:
            break
        kept.append(text[:budget])
        budget -= len(kept[-1])
    return kept


def _read_code_and_link(mail: Mail) -> tuple[str | None, str | None]:
    """Subject and plain text first; HTML for what the plain text lacks.

    LinkedIn's plain part usually says what its HTML part says, and flattening
    HTML costs several times more than everything else together, so HTML is
    flattened only when the plain text has no code, or has no link while the
    HTML points at a verification page.
    """
    plain = [tidy_text(text) for text in _within(mail.plain)]
    code = find_code(mail.subject, plain)
    link = find_link([url for text in plain for url in urls_in(text)])
    want_link = link is None and any(names_verification_page(m) for m in mail.html)
    if (code is None or want_link) and mail.html:
        flat = [flatten_html(markup) for markup in mail.html]
        texts = _within(tuple(text for text, _ in flat))
        if code is None:
            code = find_code("", texts)
        if link is None:
            hrefs = [url for _, urls in flat for url in urls]
            link = find_link([*hrefs, *(url for text in texts for url in urls_in(text))])
    return code, link


def _evidence(
    mail: Mail,
    sender: str | None,
    *,
    reason: str | None,
    trusted: bool = False,
    code: str | None = None,
    link: str | None = None,
    dkim: str | None = None,
) -> Evidence:
    return Evidence(
        sender=sender,
        trusted=trusted,
        reason=reason,
        code=code,
        link=link,
        received_at=mail.received_at,
        message_id=mail.message_id,
        subject=mail.subject,
        dkim=dkim,
    )
