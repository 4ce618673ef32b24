"""Writes the golden corpus: NAME.eml plus NAME.json (expected reading and the quirk it pins).

Run once after changing a case: `.venv/bin/python tests/emails/make_corpus.py`.
The expectations below are written by hand from what each message says; they
are never computed by otp_bot.mail.extract. The messages imitate LinkedIn's real
ones (senders, subjects, table-heavy HTML, tracking links, footers); the
receiving servers' Authentication-Results imitate Gmail, Microsoft 365 and
Postfix with OpenDKIM/OpenDMARC.
"""

from __future__ import annotations

import base64
import json
import quopri
import random
from pathlib import Path

HERE = Path(__file__).parent
SECURITY = "LinkedIn <security-noreply@linkedin.com>"
SECURITY_ADDR = "security-noreply@linkedin.com"
JOBS = "LinkedIn Job Alerts <jobalerts-noreply@linkedin.com>"
GMAIL = (
    "Authentication-Results: mx.google.com;\r\n"
    "       dkim=pass header.i=@linkedin.com header.s=d2048-202308-2 header.b=Qx3RkL9v;\r\n"
    "       spf=pass (google.com: domain of s-2kq8x1a@bounce.linkedin.com designates"
    " 108.174.0.215 as permitted sender) smtp.mailfrom=s-2kq8x1a@bounce.linkedin.com;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=linkedin.com\r\n"
)
M365 = (
    "Authentication-Results: spf=pass (sender IP is 108.174.3.12)\r\n"
    " smtp.mailfrom=bounce.linkedin.com; dkim=pass (signature was verified)\r\n"
    " header.d=linkedin.com;dmarc=pass action=none header.from=linkedin.com;compauth=pass\r\n"
    " reason=100\r\n"
)
POSTFIX = (
    "Authentication-Results: mail.example.org; dmarc=pass (p=reject dis=none)"
    " header.from=linkedin.com\r\n"
    "Authentication-Results: mail.example.org;\r\n"
    "\tdkim=pass (2048-bit key; unprotected) header.d=linkedin.com header.i=@linkedin.com\r\n"
    '\theader.a=rsa-sha256 header.s=d2048-2 header.b="k3P9vQ2x"\r\n'
)
RECEIVED = (
    "Received: from mail-sa-b.linkedin.com (mail-sa-b.linkedin.com. [108.174.0.215])\r\n"
    "        by mx.google.com with ESMTPS id a640c23a62f3a-ab7c1f9e2d1si88312466b\r\n"
    "        for <ana.souza@example.com>\r\n"
    "        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\r\n"
    "        Sat, 28 Nov 2026 09:14:03 -0800 (PST)\r\n"
)
RECEIVED_AT = "2026-11-28T17:14:03+00:00"
DATE = "Sat, 28 Nov 2026 17:14:01 +0000"
CONFIRM = (
    "https://www.linkedin.com/comm/psettings/email/confirm?id=AQF4mzQ2&token=t8Kx"
    "&trk=eml-email_confirm_01-hero-0-confirm&lipi=urn%3Ali%3Apage%3Aemail_confirm"
)
HELP = "https://www.linkedin.com/help/linkedin/answer/4788?lang=en&trk=eml-email_verification_pin"
UNSUB = (
    "https://www.linkedin.com/comm/psettings/email-unsubscribe?lipi=urn%3Ali%3Apage"
    "&midToken=AQH8&trk=eml-email_verification_pin-unsub"
)
RESET = "https://www.linkedin.com/checkpoint/rp/request-password-reset?trk=eml-verification"
PIXEL = "https://www.linkedin.com/emimp/ip_Y3BjMi0xMjM0NTY3ODkwMTI=-verification.gif"
FOOTER_TEXT = (
    "This email was intended for Ana Souza (Engineer at Example).\n"
    f"Learn why we included this: {HELP}\n"
    f"Unsubscribe: {UNSUB}\n"
    "© 2026 LinkedIn Corporation, 1000 West Maude Avenue, Sunnyvale, CA 94085.\n"
)
FOOTER_HTML = (
    '<table role="presentation" width="100%"><tr><td style="font-size:12px;color:#666">'
    "This email was intended for Ana Souza (Engineer at Example).<br>"
    f'<a href="{HELP.replace("&", "&amp;")}">Learn why we included this.</a></td></tr>'
    f'<tr><td><a href="{UNSUB.replace("&", "&amp;")}">Unsubscribe</a></td></tr>'
    "<tr><td>&copy; 2026</td><td>LinkedIn Corporation, 1000 West Maude Avenue, Sunnyvale,"
    f' CA 94085.</td></tr></table><img src="{PIXEL}" width="1" height="1">'
)

CASES: dict[str, tuple[bytes, dict[str, object]]] = {}


def case(name: str, raw: bytes | str, comment: str, **expected: object) -> None:
    """Register one message and its expected reading (a subset of Evidence.to_dict())."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    CASES[name] = (data, {"comment": comment, **expected})


def headers(
    subject: str,
    *,
    sender: str = SECURITY,
    auth: str = GMAIL,
    msgid: str = "<1029384756.4821.1764349443@ltx1-app1234.prod.linkedin.com>",
    extra: str = "",
) -> str:
    """LinkedIn's usual top: receiving server's headers first, then LinkedIn's own."""
    return (
        f"Delivered-To: ana.souza@example.com\r\n{RECEIVED}{auth}{extra}"
        f"From: {sender}\r\nTo: Ana Souza <ana.souza@example.com>\r\n"
        f"Message-ID: {msgid}\r\nSubject: {subject}\r\nDate: {DATE}\r\nMIME-Version: 1.0\r\n"
    )


def qp(text: str, charset: str = "utf-8") -> str:
    return quopri.encodestring(text.encode(charset)).decode("ascii")


def b64(text: str, charset: str = "utf-8") -> str:
    return base64.encodebytes(text.encode(charset)).decode("ascii")


def part(ctype: str, body: str, *, cte: str = "quoted-printable", charset: str = "utf-8") -> str:
    encoded = {"quoted-printable": qp, "base64": b64}.get(cte)
    payload = encoded(body, charset) if encoded else body
    return (
        f"Content-Type: {ctype}; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
        f"{payload}\r\n"
    )


def alternative(plain: str, html: str, **kwargs: str) -> str:
    boundary = "----=_Part_4821_1029384756.1764349443210"
    return (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n{part('text/plain', plain, **kwargs)}"
        f"--{boundary}\r\n{part('text/html', html, **kwargs)}--{boundary}--\r\n"
    )


def html_page(inner: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title></title>'
        "<style>td{font-family:-apple-system,system-ui;} .code{letter-spacing:2px}</style>"
        "</head><body><!--[if mso]><table><tr><td width=512><![endif]-->"
        '<table role="presentation" cellpadding="0" cellspacing="0" width="512"><tbody>'
        f'<tr><td style="padding:24px 0">{inner}</td></tr><tr><td>{FOOTER_HTML}</td></tr>'
        "</tbody></table></body></html>"
    )


def pin_mail(subject: str, intro: str, code: str, outro: str, **kwargs: str) -> str:
    plain = f"{intro}\n\n{code}\n\n{outro}\n\n{FOOTER_TEXT}"
    html = html_page(f"<p>{intro}</p><p class=code><strong>{code}</strong></p><p>{outro}</p>")
    enc = {k: v for k, v in kwargs.items() if k in ("cte", "charset")}
    return headers(subject, **{k: v for k, v in kwargs.items() if k not in enc}) + alternative(
        plain, html, **enc
    )


def trusted(code: str | None = None, link: str | None = None, **more: object) -> dict[str, object]:
    reason = None if code or link else "no_code_or_link"
    return {"trusted": True, "code": code, "link": link, "reason": reason, **more}


def not_verification(why: str, **more: object) -> dict[str, object]:
    """Authentic LinkedIn mail that is not one of its verification mails: nothing is read."""
    reason = f"not_a_verification_mail: {why}"
    return {"trusted": True, "code": None, "link": None, "reason": reason, **more}


def untrusted(reason: str, sender: str | None, **more: object) -> dict[str, object]:
    return {
        "trusted": False,
        "code": None,
        "link": None,
        "reason": reason,
        "sender": sender,
        **more,
    }


# ---------------------------------------------------------------- genuine codes
case(
    "en_pin_subject_gmail",
    pin_mail(
        "Ana, here's your PIN 042917",
        "Hi Ana, Please use this verification code to complete your sign in:",
        "042917",
        "If you didn't try to sign in, please change your password.",
    ),
    "Gmail-style results; code in the subject and the body; leading zero kept",
    **trusted(
        "042917",
        sender=SECURITY_ADDR,
        received_at=RECEIVED_AT,
        message_id="1029384756.4821.1764349443@ltx1-app1234.prod.linkedin.com",
    ),
)
case(
    "en_pin_body_postfix",
    pin_mail(
        "Your LinkedIn verification code",
        "Hi Ana, use this code to verify it's you. It expires in 15 minutes (at 10:45 PST).",
        "381205",
        "Didn't request this? Call us never: we will never ask for this code by phone.",
        auth=POSTFIX,
    ),
    "Postfix/OpenDKIM/OpenDMARC results; code only in the body; a time near the keyword",
    **trusted("381205", subject="Your LinkedIn verification code"),
)
case(
    "en_pin_m365_html_only_split_spans",
    headers("Your verification code", auth=M365)
    + part(
        "text/html",
        html_page(
            "<p>Use this verification code to finish signing in:</p>"
            '<p><span style="font-size:24px">55</span><span>01</span><b>93</b></p>'
            "<table><tr><td>Expires in</td><td>15</td><td>2026</td></tr></table>"
        ),
    ),
    "Microsoft 365 results without authserv-id; HTML only; code split across inline tags",
    **trusted("550193"),
)
case(
    "pt_pin_base64_rfc2047",
    pin_mail(
        "=?UTF-8?B?U2V1IGPDs2RpZ28gZGUgdmVyaWZpY2HDp8Ojbw==?=",
        "Olá Ana, use este código de verificação para concluir seu login:",
        "774120",
        "Se não foi você, altere sua senha. Ligue para +55 11 5555 0123 se precisar.",
        cte="base64",
    ),
    "Portuguese; base64 UTF-8 body; RFC 2047 B-encoded subject; phone number in the text",
    **trusted("774120", subject="Seu código de verificação"),
)
case(
    "fr_pin_qp",
    pin_mail(
        "=?UTF-8?Q?Voici_votre_code_de_v=C3=A9rification?=",
        "Bonjour Ana, voici votre code de vérification pour vous connecter "
        "à LinkedIn depuis un nouvel appareil situé à Paris 75008 :",
        "620514",
        "Ce code expire dans 15 minutes.",
    ),
    "French; quoted-printable with soft line breaks; RFC 2047 Q subject; a postal code nearby",
    **trusted("620514", subject="Voici votre code de vérification"),
)
case(
    "de_pin_latin1",
    pin_mail(
        "=?ISO-8859-1?Q?Ihr_Best=E4tigungscode?=",
        "Hallo Ana, hier ist Ihr Bestätigungscode für die Anmeldung am 28.11.2026:",
        "903355",
        "Der Code ist 15 Minuten gültig. Bitte geben Sie ihn nicht weiter.",
        charset="iso-8859-1",
    ),
    "German; ISO-8859-1 quoted-printable body and subject; a date before the code",
    **trusted("903355", subject="Ihr Bestätigungscode"),
)
case(
    "es_subject_code_wins",
    pin_mail(
        "118844 es tu código de verificación de LinkedIn",
        "Hola Ana: tu código anterior 550011 ya no es válido. Este es tu nuevo código:",
        "118844",
        "Caduca en 15 minutos.",
    ),
    "Spanish; the subject's code wins over an older code mentioned first in the body",
    **trusted("118844"),
)
case(
    "nl_pin_html_base64",
    headers("Je verificatiecode")
    + part(
        "text/html",
        html_page("<p>Hallo Ana, hier is je verificatiecode:</p><h2>&#56;60271</h2>"),
        cte="base64",
    ),
    "Dutch; HTML-only base64 body; a digit written as a character reference",
    **trusted("860271"),
)
case(
    "it_pin_flowed",
    headers("Il tuo codice di verifica")
    + "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n"
    + "Content-Transfer-Encoding: 8bit\r\n\r\n"
    + "Ciao Ana, ecco il tuo codice di verifica per completare l'accesso a \r\n"
    + "LinkedIn:\r\n\r\n337804\r\n\r\nIl codice scade tra 15 minuti.\r\n",
    "Italian; plain-only 8bit body with format=flowed delsp=yes",
    **trusted("337804"),
)
case(
    "en_pin_four_digits_year_like",
    pin_mail(
        "Your LinkedIn one-time code",
        "Enter this one-time code to continue:",
        "2019",
        "© 2026 LinkedIn. Code requested on Nov 28, 2026.",
    ),
    "a four-digit code that looks like a year is kept when it stands alone on its line",
    **trusted("2019"),
)
case(
    "en_pin_eight_digits",
    pin_mail(
        "Your security code",
        "Your security code is",
        "00731642",
        "Do not share it.",
    ),
    "an eight-digit code with two leading zeros stays a string",
    **trusted("00731642"),
)
case(
    "en_pin_distractors",
    headers("Verify it's you")
    + part(
        "text/plain",
        "Verification required. Request ID: 884211 on 28/11/2026 at 10:45.\n"
        "Your verification code: 204418\n"
        "Billing: $1,299.00 due. Questions? +1 (650) 555-0123, order #552190.\n"
        "Visit https://www.linkedin.com/checkpoint/challenge/AgH7654321?code=998877\n"
        + FOOTER_TEXT,
    ),
    "an id, a date, a time, a price, a phone number and digits inside a URL are not codes",
    **trusted("204418"),
)
case(
    "en_pin_neighbour_cells",
    headers("Your verification code")
    + part(
        "text/html",
        html_page(
            "<table><tr><td>Your verification code</td></tr>"
            "<tr><td>2026</td><td>11</td><td>28</td></tr>"
            "<tr><td><span>71</span><span>3306</span></td><td>15 min</td></tr></table>"
        ),
    ),
    "neighbouring cells are never glued into one number; spans inside a cell are",
    **trusted("713306"),
)

case(
    "en_pin_plain_stub_html_code",
    headers("Your verification code")
    + alternative(
        "View this email in your browser: https://www.linkedin.com/comm/email/view?id=1\n",
        html_page("<p>Your verification code:</p><p><strong>640022</strong></p>"),
    ),
    "a stub plain part ('view in browser') does not hide the HTML part's code",
    **trusted("640022"),
)
case(
    "en_pin_crlf_qp_soft_breaks",
    headers("Your verification code")
    + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    + "\r\nHi Ana, please use this verification code to complete your sign in on your new dev=\r\n"
    + "ice: 19=\r\n2837\r\n",
    "CRLF quoted-printable soft line break in the middle of the code",
    **trusted("192837"),
)

# ------------------------------------------------------- confirmation links
case(
    "en_confirm_pin_and_link",
    headers("Please confirm your email address")
    + alternative(
        "Confirm your email address\n\nUse this code to verify your email: 381920\n\n"
        f"Or confirm your email address:\n{CONFIRM}\n\n{FOOTER_TEXT}",
        html_page(
            "<h1>Confirm your email address</h1>"
            "<p>Use this code to verify your email:</p><p><b>381920</b></p>"
            f'<a href="{CONFIRM.replace("&", "&amp;")}">Confirm your email</a>'
        ),
    ),
    "PIN plus confirmation link; the long plain-text URL is split by quoted-printable soft breaks",
    **trusted("381920", CONFIRM),
)
case(
    "en_confirm_link_html_only",
    headers("Confirm your email address")
    + part(
        "text/html",
        html_page(
            f'<p><a href="{HELP.replace("&", "&amp;")}">Why am I getting this?</a></p>'
            f'<p><a href="{RESET.replace("&", "&amp;")}">Reset password</a></p>'
            f'<p><a href="{CONFIRM.replace("&", "&amp;")}" style="color:#fff">Confirm your '
            "email</a></p>"
        ),
    ),
    "only the confirm link counts; help and password-reset links carry 'verification' in trk",
    **trusted(None, CONFIRM, sender=SECURITY_ADDR),
)
_LONG_CONFIRM = CONFIRM + "&midToken=AQHq8vYp2k3&midSig=0xYz12&eid=a1b2c3-d4e5"
case(
    "en_confirm_flowed_url",
    headers("Confirm your email address")
    + "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n"
    + "Content-Transfer-Encoding: 7bit\r\n\r\n"
    + "Confirm your email address by opening this link: \r\n"
    + _LONG_CONFIRM[:70]
    + " \r\n"
    + " "
    + _LONG_CONFIRM[70:]
    + "\r\n\r\nThanks,\r\nThe LinkedIn Team\r\n",
    "format=flowed delsp=yes splits the URL over lines (soft break, space-stuffing); rejoined",
    **trusted(None, _LONG_CONFIRM),
)
_SAFE = (
    "https://eur02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.linkedin.com%2Fcomm"
    "%2Fpsettings%2Femail%2Fconfirm%3Fid%3DAQF4mzQ2%26token%3Dt8Kx&data=05%7C02%7Cana%40"
    "example.com%7C1234567890&sdata=abc%3D&reserved=0"
)
case(
    "en_confirm_safelinks_m365",
    headers("Confirm your email address", auth=M365)
    + part(
        "text/html",
        html_page(f'<a href="{_SAFE.replace("&", "&amp;")}">Confirm your email</a>'),
    ),
    "Outlook Safe Links wrapper is unwrapped before judging the link",
    **trusted(None, "https://www.linkedin.com/comm/psettings/email/confirm?id=AQF4mzQ2&token=t8Kx"),
)
_JOB_VERIFY = "https://www.linkedin.com/comm/job-posting/verify-email?jobId=3784512&token=Zx81"
case(
    "en_job_posting_verify",
    headers(
        "Verify your email to post your job",
        sender="LinkedIn Talent Solutions <hiring-noreply@linkedin.com>",
    )
    + alternative(
        "Verify your email to keep your job post active\n"
        "Job ID: 3784512 · Senior Data Engineer · Sunnyvale, CA 94085\n"
        "Enter this code to verify your email: 52719\n"
        f"Or verify here: {_JOB_VERIFY}\n\n{FOOTER_TEXT}",
        html_page(
            "<p>Enter this code to verify your email: <b>52719</b></p>"
            f'<a href="{_JOB_VERIFY}">Verify email</a>'
        ),
    ),
    "job-posting verification: five-digit code and link; the job id and ZIP code are not codes",
    **trusted("52719", _JOB_VERIFY, sender="hiring-noreply@linkedin.com"),
)
_JOB_VERIFY_PT = "https://www.linkedin.com/comm/job-posting/verify-email?jobId=4021733&token=Qp02"
case(
    "pt_job_posting_verify_link_only",
    headers(
        "=?UTF-8?Q?Confirme_seu_e-mail_para_publicar_sua_vaga?=",
        sender="LinkedIn <hiring-noreply@linkedin.com>",
    )
    + alternative(
        "Confirme seu e-mail para manter sua vaga ativa (vaga n° 4021733).\n"
        f"Confirmar e-mail: {_JOB_VERIFY_PT}\n",
        html_page(f'<a href="{_JOB_VERIFY_PT}">Confirmar e-mail</a> (vaga n&deg; 4021733)'),
        cte="base64",
    ),
    "Portuguese job-posting verification with a link and a job number but no code",
    **trusted(None, _JOB_VERIFY_PT, subject="Confirme seu e-mail para publicar sua vaga"),
)
case(
    "trusted_authserv_id_lower_header",
    headers(
        "Your verification code",
        auth="Authentication-Results: relay.internal.example; none\r\n"
        "Authentication-Results: mx.example.org; dkim=pass header.d=linkedin.com\r\n",
    )
    + part("text/plain", "Your verification code is 665201. It expires in 15 minutes.\n"),
    "with mx.example.org configured as trusted, its lower header decides (internal relay on top)",
    trusted_authserv_ids=["mx.example.org"],
    **trusted("665201"),
)
case(
    "untrusted_authserv_id_not_configured",
    headers(
        "Your verification code",
        auth="Authentication-Results: relay.internal.example; none\r\n"
        "Authentication-Results: mx.example.org; dkim=pass header.d=linkedin.com\r\n",
    )
    + part("text/plain", "Your verification code is 665201. It expires in 15 minutes.\n"),
    "without configuration only the topmost header counts, and it shows nothing",
    **untrusted("dkim_dmarc_not_pass: none", SECURITY_ADDR),
)

# ------------------------------------------------ genuine LinkedIn, no code
case(
    "en_job_alert",
    headers("“Data Engineer”: 25 new jobs in Sunnyvale, CA", sender=JOBS)
    + alternative(
        "Your job alert for Data Engineer in Sunnyvale, CA 94085\n"
        "25 new jobs match your preferences.\n\n"
        "Senior Data Engineer\nExample Corp · Sunnyvale, CA (Hybrid)\n$165,000/yr - $210,000/yr\n"
        "Verified · 1234 applicants · Actively recruiting\n"
        "View job: https://www.linkedin.com/comm/jobs/view/3784512/?trackingId=ab12&refId=9911\n\n"
        + FOOTER_TEXT,
        html_page("<h2>25 new jobs</h2><p>Senior Data Engineer</p><p>$165,000/yr</p>"),
    ),
    "job alert: salaries, applicant counts, job ids and a 'Verified' badge are not codes",
    **not_verification(
        "sender jobalerts-noreply@linkedin.com (job alerts) never sends codes",
        sender="jobalerts-noreply@linkedin.com",
    ),
)
case(
    "en_newsletter",
    headers(
        "The week in AI: 5 stories you missed",
        sender="LinkedIn News <editors-noreply@linkedin.com>",
    )
    + part(
        "text/html",
        html_page(
            "<h1>Top stories</h1><p>Chip demand up 2024 to 2026; 1500 layoffs confirmed in Q3.</p>"
            "<p>Read more at linkedin.com/news/story/ai-week-4412</p>"
        ),
    ),
    "newsletter: years and counts near 'confirmed' are not codes (the sender is not read at all)",
    **not_verification("sender editors-noreply@linkedin.com (newsletters) never sends codes"),
)
case(
    "en_notification_searches",
    headers(
        "You appeared in 12 searches this week",
        sender="LinkedIn <notifications-noreply@linkedin.com>",
        auth=M365,
    )
    + part(
        "text/plain",
        "You appeared in 12 searches this week.\nView your profile: "
        "https://www.linkedin.com/in/ana-souza-12345678/?trk=eml-verification\n" + FOOTER_TEXT,
    ),
    "notification: a profile link with 'verification' in its tracking parameter is not a link",
    **not_verification(
        "sender notifications-noreply@linkedin.com (notifications) never sends codes",
        sender="notifications-noreply@linkedin.com",
    ),
)
case(
    "en_new_signin_alert",
    headers("Ana, we noticed a new sign-in to your account")
    + part(
        "text/plain",
        "We noticed a new sign-in on Nov 28, 2026 at 9:14 AM from Chrome on Windows near "
        "São Paulo, SP 01310.\nIf this wasn't you, reset your password: "
        + RESET
        + "\nSign in: https://www.linkedin.com/login?trk=eml-security_verify\n"
        + FOOTER_TEXT,
    ),
    "security alert from the security sender: not a verification subject, nothing is read",
    **not_verification("subject is not a verification subject"),
)
case(
    "en_password_reset",
    headers("Here's the link to reset your password")
    + part(
        "text/html",
        html_page(
            "<p>Click the link to reset your password. Confirmation is required within "
            "1 hour.</p>"
            '<a href="https://www.linkedin.com/checkpoint/rp/password-reset?requestSubmissionId'
            '=AgF83&amp;trk=eml-confirm">Reset password</a>'
        ),
    ),
    "password reset from the security sender is not verification mail, even with 'confirm' in trk",
    **not_verification("subject is not a verification subject"),
)

# ---------------------------------------------------------------- spoofs
HOMOGLYPH = "linked\u0131n.com"  # dotless i
_SPOOF_BODY = part("text/plain", "Your verification code: 246810\n" + FOOTER_TEXT)


def spoof_auth(domain: str) -> str:
    return (
        f"Authentication-Results: mx.google.com; dkim=pass header.i=@{domain};"
        f" spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}\r\n"
    )


case(
    "spoof_lookalike_linkedln",
    headers(
        "Your verification code",
        sender="LinkedIn <security-noreply@linkedln.com>",
        auth=spoof_auth("linkedln.com"),
    )
    + _SPOOF_BODY,
    "look-alike domain linkedln.com with its own valid DKIM",
    **untrusted("sender_not_linkedin: from linkedln.com", "security-noreply@linkedln.com"),
)
case(
    "spoof_suffix_domain",
    headers(
        "Your verification code",
        sender="LinkedIn <security-noreply@linkedin.com.example.net>",
        auth=spoof_auth("linkedin.com.example.net"),
    )
    + _SPOOF_BODY,
    "linkedin.com as a left-hand part of someone else's domain",
    **untrusted(
        "sender_not_linkedin: from linkedin.com.example.net",
        "security-noreply@linkedin.com.example.net",
    ),
)
case(
    "spoof_punycode",
    headers(
        "Your verification code",
        sender="LinkedIn <security@xn--linkedn-c8a.com>",
        auth=spoof_auth("xn--linkedn-c8a.com"),
    )
    + _SPOOF_BODY,
    "punycode look-alike (an IDN with a dotless i)",
    **untrusted("sender_not_linkedin: from xn--linkedn-c8a.com", "security@xn--linkedn-c8a.com"),
)
case(
    "spoof_unicode_domain",
    headers(
        "Your verification code",
        sender=f"LinkedIn <security@{HOMOGLYPH}>",
        auth=spoof_auth("xn--linkedn-c8a.com"),
    )
    + _SPOOF_BODY,
    "raw UTF-8 homoglyph domain in From (dotless i)",
    **untrusted(f"sender_not_linkedin: from {HOMOGLYPH}", f"security@{HOMOGLYPH}"),
)
case(
    "spoof_display_name",
    headers(
        "Your verification code",
        sender='"LinkedIn Security" <alerts@secure-mail.example>',
        auth=spoof_auth("secure-mail.example"),
    )
    + _SPOOF_BODY,
    "display-name spoof: the name says LinkedIn, the address does not",
    **untrusted("sender_not_linkedin: from secure-mail.example", "alerts@secure-mail.example"),
)
case(
    "spoof_display_name_address",
    headers(
        "Your verification code",
        sender='"security-noreply@linkedin.com" <security-noreply@linkedin-mail-security.com>',
        auth=spoof_auth("linkedin-mail-security.com"),
    )
    + _SPOOF_BODY,
    "display name holding a LinkedIn address in front of another address",
    **untrusted(
        "sender_not_linkedin: from linkedin-mail-security.com",
        "security-noreply@linkedin-mail-security.com",
    ),
)
case(
    "spoof_forged_lower_results",
    headers(
        "Your verification code",
        auth="Authentication-Results: mx.google.com; dkim=none; spf=softfail"
        " smtp.mailfrom=linkedin.com; dmarc=fail (p=REJECT) header.from=linkedin.com\r\n"
        "Authentication-Results: mx.google.com; dkim=pass header.d=linkedin.com;"
        " dmarc=pass header.from=linkedin.com\r\n",
    )
    + _SPOOF_BODY,
    "a passing header forged below the receiving server's failing one proves nothing",
    **untrusted("dmarc_not_pass: dmarc=fail for linkedin.com", SECURITY_ADDR),
)
case(
    "spoof_no_authentication_results",
    headers("Your verification code", auth="") + _SPOOF_BODY,
    "From linkedin.com without any Authentication-Results header",
    **untrusted("no_authentication_results", SECURITY_ADDR),
)
case(
    "spoof_dkim_other_domain",
    headers(
        "Your verification code",
        auth="Authentication-Results: mx.google.com; dkim=pass header.i=@sendgrid.net;"
        " spf=pass smtp.mailfrom=sendgrid.net; dmarc=fail header.from=linkedin.com\r\n",
    )
    + _SPOOF_BODY,
    "DKIM passes for a bulk sender's domain, not aligned with linkedin.com; DMARC fails",
    **untrusted("dmarc_not_pass: dmarc=fail for linkedin.com", SECURITY_ADDR),
)
case(
    "spoof_dkim_suffix_signer",
    headers(
        "Your verification code",
        auth="Authentication-Results: mx.google.com;"
        " dkim=pass header.d=linkedin.com.evil.example\r\n",
    )
    + _SPOOF_BODY,
    "DKIM signer linkedin.com.evil.example is not linkedin.com",
    **untrusted("dkim_dmarc_not_pass: dkim=pass", SECURITY_ADDR),
)
case(
    "spoof_two_from_headers",
    headers("Your verification code", extra="From: attacker@evil.example\r\n") + _SPOOF_BODY,
    "two From headers: which one a client shows is anyone's guess, so neither is trusted",
    **untrusted("ambiguous_from: 2 From headers", None),
)
case(
    "spoof_two_from_addresses",
    headers(
        "Your verification code",
        sender="LinkedIn <security-noreply@linkedin.com>, attacker@evil.example",
    )
    + _SPOOF_BODY,
    "one From header with two addresses",
    **untrusted("unreadable_from", None),
)
case(
    "forwarded_inline_gmail",
    headers(
        "Fwd: Ana, here's your PIN 042917",
        sender="Bruno Lima <bruno.lima@gmail.com>",
        auth=spoof_auth("gmail.com"),
    )
    + part(
        "text/plain",
        "Can you check this?\n\n---------- Forwarded message ---------\n"
        "From: LinkedIn <security-noreply@linkedin.com>\nDate: Sat, Nov 28, 2026\n"
        "Subject: Ana, here's your PIN 042917\n\nYour verification code: 042917\n",
    ),
    "LinkedIn's mail forwarded inline by someone else (Gmail style)",
    **untrusted("forwarded: subject prefix from gmail.com", "bruno.lima@gmail.com"),
)
_INNER = pin_mail("Ana, here's your PIN 042917", "Your verification code:", "042917", "Thanks")
case(
    "forwarded_as_attachment",
    headers(
        "Look at this",
        sender="Bruno Lima <bruno.lima@outlook.example>",
        auth=spoof_auth("outlook.example"),
    )
    + 'Content-Type: multipart/mixed; boundary="fw1"\r\n\r\n'
    + "--fw1\r\n"
    + part("text/plain", "See attached.\n")
    + "--fw1\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    + _INNER
    + "\r\n--fw1--\r\n",
    "LinkedIn's genuine mail attached (message/rfc822) to someone else's mail",
    **untrusted("forwarded: attached message from outlook.example", "bruno.lima@outlook.example"),
)
case(
    "forwarded_by_linkedin_address",
    headers("FW: Your verification code")
    + part(
        "text/plain",
        "-----Original Message-----\nFrom: LinkedIn\nYour verification code: 246810\n",
    ),
    "even a signed mail from a linkedin.com colleague is not evidence when it is a forward",
    **untrusted("forwarded: subject prefix from linkedin.com", SECURITY_ADDR),
)


# ------------------------------------------ languages and layouts (issue 12)
def wide(digits: str) -> str:
    """Full-width digits (U+FF10..U+FF19), as Japanese and Chinese mail may write a code."""
    return "".join(chr(0xFF10 + int(d)) for d in digits)


# (name, subject, plain text, code, the quirk it pins). Every one comes from the
# security sender; the HTML part repeats the text, one paragraph per line.
LANGUAGES = [
    (
        "en_signin_pin_real_phrases",
        "Ana, here's your PIN",
        "Hi Ana,\nPlease use this verification code to complete your sign in: 528104\n"
        "If you didn't try to sign in, change your password.",
        "528104",
        "en: the real sign-in phrases; the subject has no code, the body's code line does",
    ),
    (
        "en_confirm_your_pin_is_subject",
        "Ana, your pin is 730215. Please confirm your email address.",
        "Please confirm your email address to finish setting up your account.",
        "730215",
        "en: the real e-mail confirmation subject carries the PIN",
    ),
    (
        "pt_br_keyword_then_digits",
        "Aqui está seu código de verificação 482913",
        "Olá Ana,\nUse seu código de verificação 482913 para concluir o login.\n"
        "Este código expira em 15 minutos.",
        "482913",
        "pt-BR: keyword then digits, no colon, in the subject and inline in the body",
    ),
    (
        "pt_pt_code_alone",
        "O seu código de verificação do LinkedIn",
        "Olá Ana,\nIntroduza este código de verificação para iniciar sessão:\n\n615230\n\n"
        "O código expira dentro de 15 minutos.",
        "615230",
        "pt-PT: the code alone on its line below the keyword",
    ),
    (
        "es_keyword_then_digits",
        "Tu código de verificación 207781",
        "Hola Ana:\nIntroduce el código de verificación 207781 para completar el inicio de sesión.",
        "207781",
        "es: keyword then digits without punctuation",
    ),
    (
        "fr_keyword_then_digits",
        "Votre code de vérification 903412",
        "Bonjour Ana,\nSaisissez le code de vérification 903412 pour vous connecter.",
        "903412",
        "fr: keyword then digits without punctuation",
    ),
    (
        "it_keyword_then_digits",
        "Il tuo codice di verifica 118306",
        "Ciao Ana,\ninserisci il codice di verifica 118306 per completare l'accesso.",
        "118306",
        "it: keyword then digits without punctuation",
    ),
    (
        "de_digits_then_keyword",
        "420917 ist Ihr Bestätigungscode",
        "Hallo Ana,\n420917 ist Ihr Bestätigungscode für die Anmeldung.",
        "420917",
        "de: digits then keyword",
    ),
    (
        "nl_code_alone",
        "Je LinkedIn-verificatiecode",
        "Hallo Ana,\nGebruik deze verificatiecode om je aanmelding te voltooien:\n\n551908\n",
        "551908",
        "nl: compound keyword, the code alone on its line",
    ),
    (
        "sv_digits_then_keyword",
        "Din verifieringskod för LinkedIn",
        "Hej Ana,\n774201 är din verifieringskod. Koden upphör att gälla om 15 minuter.",
        "774201",
        "sv: digits then keyword with the verb 'är'",
    ),
    (
        "da_keyword_colon",
        "Din bekræftelseskode til LinkedIn",
        "Hej Ana,\nDin bekræftelseskode er: 390662\nKoden udløber om 15 minutter.",
        "390662",
        "da: 'kode er:' lead-in",
    ),
    (
        "nb_code_alone",
        "Bekreftelseskoden din for LinkedIn",
        "Hei Ana,\nBruk denne bekreftelseskoden for å fullføre påloggingen:\n\n268140\n",
        "268140",
        "nb: the code alone on its line",
    ),
    (
        "pl_keyword_to_digits",
        "Twój kod weryfikacyjny LinkedIn",
        "Cześć Ana,\nTwój kod weryfikacyjny to 845017. Kod wygaśnie za 15 minut.",
        "845017",
        "pl: 'kod weryfikacyjny to N'",
    ),
    (
        "tr_digits_then_keyword",
        "LinkedIn doğrulama kodunuz",
        "Merhaba Ana,\n615904 doğrulama kodunuzdur. Kod 15 dakika içinde geçerliliğini yitirir.",
        "615904",
        "tr: digits then keyword (suffixed 'kodunuzdur')",
    ),
    (
        "ja_full_width_digits",
        "LinkedIn の確認コード",
        "Ana 様\nサインインを完了するには、次の確認コードを入力してください\uff1a\n\n"
        f"{wide('482913')}\n",
        "482913",
        "ja: full-width digits alone on their line after a full-width colon",
    ),
    (
        "ja_inline_particle",
        "確認コードは 907316 です",
        "確認コードは907316です。15分間有効です。",
        "907316",
        "ja: keyword, particle, digits with no space (CJK does not glue to digits)",
    ),
    (
        "zh_keyword_verb",
        "您的 LinkedIn 验证码",
        "您好 Ana\uff0c\n您的验证码为 330871\uff0c15 分钟内有效。",
        "330871",
        "zh: '验证码为 N' (verb lead-in)",
    ),
    (
        "zh_tw_full_width",
        "您的 LinkedIn 驗證碼",
        f"Ana 您好\uff1a\n您的驗證碼\uff1a{wide('190246')}\n",
        "190246",
        "zh-TW: full-width digits after a full-width colon",
    ),
    (
        "ko_digits_then_keyword",
        "LinkedIn 인증 코드",
        "안녕하세요 Ana님,\n582037은 LinkedIn 인증 코드입니다. 15분 후에 만료됩니다.",
        "582037",
        "ko: digits then keyword with a Hangul particle glued to the digits",
    ),
]
for _name, _subject, _text, _code, _quirk in LANGUAGES:
    _html = html_page("".join(f"<p>{line}</p>" for line in _text.split("\n") if line))
    case(
        _name,
        headers(f"=?UTF-8?B?{base64.b64encode(_subject.encode()).decode()}?=")
        + alternative(f"{_text}\n\n{FOOTER_TEXT}", _html),
        _quirk,
        **trusted(_code, subject=_subject),
    )

# ------------------------------ only LinkedIn's verification mail (issue 12)
_MEMBER_MESSAGE = (
    "Bruno Lima sent you a message:\n\n"
    "Hi Ana! Your verification code: 661204. Please enter it on the job post.\n\n"
    f"View message: https://www.linkedin.com/comm/messaging/thread/2-YTk3/\n\n{FOOTER_TEXT}"
)
case(
    "member_message_with_code",
    headers(
        "Bruno just messaged you: your verification code 661204",
        sender="Bruno Lima via LinkedIn <messages-noreply@linkedin.com>",
        extra="X-LinkedIn-Class: MBR-TO-MBR\r\n"
        "X-LinkedIn-Template: email_type_messaging_digest\r\n",
    )
    + part("text/plain", _MEMBER_MESSAGE),
    "a member's message carrying a code, signed by LinkedIn (DKIM and DMARC pass): never read",
    **not_verification(
        "sender messages-noreply@linkedin.com (member messages) never sends codes",
        sender="messages-noreply@linkedin.com",
    ),
)
case(
    "member_inmail_subject_code",
    headers(
        "Your verification code is 551920",
        sender="Recruiter via LinkedIn <inmail-hit-reply@linkedin.com>",
        extra="X-LinkedIn-Class: INMAIL\r\n",
    )
    + part("text/plain", "Your verification code is 551920.\n"),
    "InMail: the member wrote the subject too",
    **not_verification(
        "sender inmail-hit-reply@linkedin.com (InMail) never sends codes",
        sender="inmail-hit-reply@linkedin.com",
    ),
)
case(
    "member_invitation_headline_code",
    headers(
        "Ana, please add me to your LinkedIn network",
        sender="Bruno Lima <invitations@linkedin.com>",
        extra="X-LinkedIn-Class: INVITE-GUEST\r\n",
    )
    + part("text/plain", "Bruno Lima\nYour verification code: 804417 | Growth hacker\n"),
    "invitation: the headline is member-written",
    **not_verification(
        "sender invitations@linkedin.com (invitations) never sends codes",
        sender="invitations@linkedin.com",
    ),
)
case(
    "newsletter_hiring_code_title",
    headers(
        "The Hiring Code: 250000 job posts later",
        sender="LinkedIn News <newsletters-noreply@linkedin.com>",
    )
    + part("text/plain", "The Hiring Code: 250000 job posts later\nRead the edition.\n"),
    "a genuine newsletter whose title has a code word and six digits",
    **not_verification("sender newsletters-noreply@linkedin.com (newsletters) never sends codes"),
)
case(
    "security_sender_member_template_header",
    headers(
        "Your verification code 300118",
        extra="X-LinkedIn-Template: email_type_messaging_digest\r\n",
    )
    + part("text/plain", "Your verification code: 300118\n"),
    "the security sender with a member-channel template header is still refused",
    **not_verification("template email_type_messaging_digest"),
)
case(
    "security_sender_member_class_header",
    headers("Your verification code 300119", extra="X-LinkedIn-Class: INMAIL\r\n")
    + part("text/plain", "Your verification code: 300119\n"),
    "the security sender with a member-channel class header is still refused",
    **not_verification("class INMAIL"),
)
case(
    "security_template_headers_allowed",
    headers(
        "Your verification code",
        extra="X-LinkedIn-Class: EMAIL-DEFAULT\r\n"
        "X-LinkedIn-Template: email_security_verification_pin_01\r\n",
    )
    + part("text/plain", "Please use this verification code to complete your sign in: 448120\n"),
    "allowlisted class and template headers are read",
    **trusted("448120"),
)
case(
    "hiring_sender_other_mail",
    headers(
        "Your job has 25 new applicants 771204",
        sender="LinkedIn <hiring-noreply@linkedin.com>",
    )
    + part("text/plain", "Your job post has new applicants. Code: 771204\n"),
    "the hiring sender's mail other than the e-mail verification is not read",
    **not_verification("subject is not a verification subject"),
)
case(
    "repeated_subject_header",
    headers("Your verification code 111111", extra="Subject: Your verification code 222222\r\n")
    + part("text/plain", "Your verification code: 222222\n"),
    "two Subject headers: DKIM may cover one while the reader sees the other",
    **untrusted("repeated_header: 2 Subject headers", SECURITY_ADDR),
)
case(
    "repeated_message_id_header",
    headers("Your verification code", extra="Message-ID: <other@evil.example>\r\n")
    + part("text/plain", "Your verification code: 222223\n"),
    "two Message-ID headers",
    **untrusted("repeated_header: 2 Message-ID headers", SECURITY_ADDR),
)
_HTML_ONLY_LINK = CONFIRM.replace("&", "&amp;")
case(
    "en_confirm_long_text_link_in_html",
    headers("Please confirm your email address")
    + alternative(
        "Confirm your email address to finish setting up your account.\n"
        + "Here is why this matters and what happens next. " * 20
        + "\nUse the button in this email to confirm.\n\n"
        + FOOTER_TEXT,
        html_page(f'<a href="{_HTML_ONLY_LINK}">Confirm your email</a>'),
    ),
    "a long text part without the link: the link is read from the HTML part",
    **trusted(None, CONFIRM),
)
_TRACKED = (
    "https://www.linkedin.com/e/v2?e=3f9k1-lx2&lipi=urn%3Ali%3Apage%3Aemail_confirm%3BAbC%2Fd%3D"
    "&a=psettings-email-confirm&midToken=AQF8&ek=email_confirm_01"
)
case(
    "en_confirm_tracking_redirect",
    headers("Please confirm your email address")
    + part("text/html", html_page(f'<a href="{_TRACKED.replace("&", "&amp;")}">Confirm</a>')),
    "the /e/v2 tracking redirect whose action is the e-mail confirmation",
    **trusted(None, _TRACKED),
)
_EVIL_LINKS = [
    "https://evil.example\\@www.linkedin.com/psettings/email/confirm?id=1",
    "https://www.linkedin.com/psettings/email/confirm/../../redir/redirect?url=https://evil.example",
    "https://www.linkedin.com/psettings/email/confirm/%2e%2e/%2e%2e/redir/redirect?url=x",
    "https://www.linkedin.com/psettings/email/confirm;jsessionid=1",
    "https://www.linkedin.com:8443/psettings/email/confirm?id=1",
    "https://user@www.linkedin.com/psettings/email/confirm?id=1",
    "http://www.linkedin.com/psettings/email/confirm?id=1",
    "https://www.linkedin.com/e/v2?a=checkpoint-password-reset&e=1&x=confirm",
    "https://www.linkedin.com/e/v2?a=psettings-email-confirm&a=redirect&e=1",
]
case(
    "hostile_confirm_links",
    headers("Please confirm your email address")
    + part(
        "text/html",
        html_page("".join(f'<a href="{u.replace("&", "&amp;")}">Confirm</a>' for u in _EVIL_LINKS)),
    ),
    "backslash, dot segments (raw and encoded), ';' params, ports, userinfo, http and other "
    "redirect actions: no link",
    **trusted(None, None),
)

# ---------------------------------------------------------------- hostile
# (the multi-megabyte ones are built in tests/test_extract_hostile.py, not stored)
case(
    "hostile_empty",
    b"",
    "an empty file",
    **untrusted("no_from_address", None, subject="", message_id=None, received_at=None),
)
case(
    "hostile_random_bytes",
    random.Random(20261128).randbytes(8192),
    "8 KiB of random bytes",
    trusted=False,
    code=None,
    link=None,
)
case(
    "hostile_truncated_mime",
    headers("Your verification code")
    + 'Content-Type: multipart/mixed; boundary="cut"\r\n\r\n--cut\r\n'
    + part("text/plain", "Your verification code: 480075\n")
    + "--cut\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVy",
    "MIME cut off inside a base64 attachment, no closing boundary: the code is still read",
    **trusted("480075"),
)
case(
    "hostile_unknown_charset",
    headers("=?x-klingon?Q?Your_verification_code_=A4=B0?=")
    + "Content-Type: text/plain; charset=x-klingon\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "Your verification code: 915602\r\n\xa4\xb1\r\n",
    "unknown charset in the subject and the body: ASCII digits still read",
    **trusted("915602"),
)
case(
    "hostile_broken_base64",
    headers("Your verification code")
    + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + "WW91ciB2ZXJpZmljYXRpb24gY29kZTog!!!@@@###\r\nNzc3*\r\n",
    "broken base64 body: nothing found, no exception",
    **trusted(None, None),
)


def nested(depth: int, inner: str) -> str:
    body = inner
    for level in range(depth):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n'
            f"--b{level}\r\n{body}\r\n--b{level}--\r\n"
        )
    return body


case(
    "hostile_nesting_60",
    headers("Your verification code") + nested(60, part("text/plain", "Your code: 360360\n")),
    "60 levels of multipart nesting: the walk stops at its depth bound, nothing found",
    **trusted(None, None),
)
case(
    "hostile_nesting_3_readable",
    headers("Your verification code") + nested(3, part("text/plain", "Your code: 360361\n")),
    "shallow nesting within the bound is read",
    **trusted("360361"),
)
case(
    "hostile_headers_only",
    headers("Your verification code 707070").removesuffix("\r\n"),
    "headers without a body or blank line: the subject's code is still read",
    **trusted("707070"),
)
case(
    "hostile_nul_and_binary_headers",
    b"From: LinkedIn <security-noreply@linkedin.com>\r\nSubject: \x00\xff\xfe code\r\n"
    b"X-Junk: " + bytes(range(256)) + b"\r\n\r\n\x00\x01\x02 body",
    "NUL and raw 8-bit bytes in headers; no Authentication-Results",
    **untrusted("no_authentication_results", SECURITY_ADDR),
)
case(
    "hostile_bad_encoded_words",
    headers("=?utf-8?B?###?= =?utf-8?Q?=ZZ_Your_code_is?= 626262 =?x-none?B?AAAA?=")
    + part("text/plain", "nothing here\n"),
    "malformed and unknown-charset encoded-words in the subject; its code is still read",
    **trusted("626262", subject="=ZZ Your code is 626262"),
)

case(
    "hostile_broken_base64_word",
    headers("=?utf-8?Q?Your_code_is?= 626262 =?x-none?B?:AAA?=")
    + part("text/plain", "nothing here\n"),
    "an encoded-word whose base64 cannot decode is dropped; the rest of the subject is read",
    **trusted("626262", subject="Your code is 626262"),
)

case(
    "hostile_poison_charsets",
    headers("=?undefined?Q?Your_code_is?= =?rot13?Q?_?= 515253 =?a\x00b?Q?x?=")
    + "Content-Type: text/plain; charset=undefined\r\n\r\nYour verification code: 515253\r\n",
    "charsets whose codecs always raise ('undefined'), are not text codecs (rot13) or hold a NUL",
    **trusted("515253", subject="Your code is 515253 x"),
)

# Inputs that cost time rather than raising (issue 11): each one took from 0.2 s
# to minutes before the reader was made linear; tests/emails/timing.py and
# bench/fuzz_time.py generate the whole class.
case(
    "hostile_from_nested_parens",
    headers("Your verification code", sender="(" * 600 + SECURITY)
    + part("text/plain", "Your verification code: 482913\n"),
    "600 nested comment parentheses in From: the stdlib address parser recurses too deep",
    **untrusted("unreadable_from", None),
)
case(
    "hostile_dash_run",
    headers("Your verification code")
    + part("text/plain", "Your verification code:\n\n482913\n\n" + "-" * 30_000 + "\n", cte="8bit"),
    "30,000 dashes: the forward-quote regex was quadratic in a dash run",
    **trusted("482913"),
)
case(
    "hostile_auth_results_dotted",
    headers(
        "Your verification code",
        auth="Authentication-Results: mx.google.com; dkim=pass header.i=@linkedin.com "
        + "a." * 600
        + "a\r\n",
    )
    + part("text/plain", "Your verification code:\n\n482913\n"),
    "a 1.2 KB dotted word among the properties: cubic in the property regex",
    **trusted("482913"),
)
case(
    "hostile_punycode_charset",
    headers("Your verification code")
    + "Content-Type: text/plain; charset=punycode\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "Your verification code: 482913\r\n-"
    + "ab" * 30_000
    + "\r\n",
    "charset=punycode decodes in quadratic time: not on the allowlist, read as UTF-8",
    **trusted("482913"),
)
case(
    "hostile_html_lt_spaces",
    headers("Your verification code")
    + part("text/html", "<p>Your verification code:</p><p>482913</p><" + " " * 30_000, cte="8bit"),
    "'<' and 30,000 spaces in trusted HTML: the block-tag regex rescanned the spaces",
    **trusted("482913"),
)
case(
    "hostile_html_em_spaces",
    headers("Your verification code")
    + part(
        "text/html",
        "<p>Your verification code:</p><p>482913</p>Thanks" + "\u2003" * 20_000 + ".",
        cte="8bit",
    ),
    "20,000 EM SPACEs in trusted HTML: the blank-line regex rescanned the run",
    **trusted("482913"),
)


def main() -> None:
    """Write every case; remove stale files of cases that no longer exist."""
    for stale in [*HERE.glob("*.eml"), *HERE.glob("*.json")]:
        if stale.stem not in CASES:
            stale.unlink()
    for name, (raw, expected) in CASES.items():
        (HERE / f"{name}.eml").write_bytes(raw)
        (HERE / f"{name}.json").write_text(
            json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    print(f"wrote {len(CASES)} cases to {HERE}")


if __name__ == "__main__":
    main()
