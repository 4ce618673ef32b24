"""What ``otp-bot COMMAND --help`` says: one description and examples per command.

Kept apart from ``cli.py`` so the dispatch stays short; the reference page
(docs/reference/cli.md) repeats these examples.
"""

from __future__ import annotations

# command -> (one-line summary for `otp-bot --help`, longer description, examples)
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "run": (
        "run the daemon (one or more accounts; SIGHUP reloads)",
        "Watch each account's mailbox and solve the checkpoints of the drafts handed to it,\n"
        "until SIGTERM or SIGINT. One --env-file per account, and/or --env-dir DIR with one\n"
        "DIR/*.env file per account. SIGHUP reads every file again: new accounts start,\n"
        "removed ones stop after their current step, changed ones restart, a bad file is\n"
        "reported and skipped.",
        (
            "otp-bot run --env-file /etc/otp-bot/acme.env",
            "otp-bot --log-level debug run --env-file a.env --env-file b.env",
            "otp-bot run --env-dir /etc/otp-bot/accounts   # then: kill -HUP <pid>",
        ),
    ),
    "publish": (
        "hand a draft to the running daemon",
        "Queue a postpress draft in the running daemon and return at once; prints the\n"
        "draft as JSON. Needs only OTP_BOT_CONTROL_ADDR (and its token).",
        (
            "otp-bot publish job_draft_123 --env-file /etc/otp-bot/acme.env",
            "otp-bot publish job_draft_123 --retry --env-file acme.env",
        ),
    ),
    "status": (
        "show the drafts of the running daemon",
        "A table of the drafts (newest first), or one draft; --json for a JSON array.",
        (
            "otp-bot status --env-file acme.env",
            "otp-bot status job_draft_123 --json --env-file acme.env | jq .[0].state",
            "otp-bot status --state failed --since 2h --env-file acme.env",
        ),
    ),
    "cancel": (
        "cancel a draft in the running daemon",
        "Stop a queued, awaiting, held or retrying draft at once; a draft whose publish or\n"
        "submit is in flight finishes that call first, then is cancelled. Prints the draft;\n"
        "exit 1 when it had already finished (published, failed or cancelled).",
        ("otp-bot cancel job_draft_123 --env-file acme.env",),
    ),
    "retry": (
        "queue failed drafts again",
        "Queue every failed draft again (or only those failed with --error, of --account)\n"
        "for a fresh attempt; prints the drafts queued.",
        (
            "otp-bot retry --failed --env-file acme.env",
            "otp-bot retry --failed --error errors/expired_credentials --env-file acme.env",
        ),
    ),
    "resume": (
        "probe held accounts now",
        "Ask postpress at once whether a held account works again (GET /accounts/{id}) and,\n"
        "if so, resume its queue; exit 1 while an account stays held.",
        ("otp-bot resume --env-file acme.env", "otp-bot resume acc_123 --env-file acme.env"),
    ),
    "check": (
        "prove the set-up without side effects",
        "Check the control API's address and token rules, the CA file, the state directory,\n"
        "the API key and account (an authenticated read), the IMAP login, folder and IDLE,\n"
        "and the mail server's clock. One line per check, a hint under each failure.\n"
        "Nothing is published, written or changed.\n"
        "Exit codes: 0 all passed, 2 configuration, 3 state directory, 4 postpress API,\n"
        "5 mailbox, 6 clock (several failures: the first of these).",
        (
            "otp-bot check --env-file /etc/otp-bot/acme.env",
            "otp-bot check --json --env-file acme.env | jq .checks",
        ),
    ),
    "health": (
        "exit 0 when the running daemon is healthy",
        "Ask the running daemon whether every account is healthy (readiness), or with\n"
        "--live only whether its loops make progress (liveness).",
        ("otp-bot health --env-file acme.env", "otp-bot health --live --env-file acme.env"),
    ),
    "config": (
        "validate and show the settings (secrets hidden)",
        "Load the settings as `run` would and print them as JSON, secrets hidden; with\n"
        "--show-origin, one line per variable saying where its value came from.",
        (
            "otp-bot config --env-file /etc/otp-bot/acme.env",
            "otp-bot config --show-origin --env-file acme.env",
        ),
    ),
    "extract": (
        "show what the bot reads from one e-mail",
        "Read one RFC 822 file and show the sender, whether it is trusted and why, and the\n"
        "code or link found. Exit 0 whenever the file could be read.",
        ("otp-bot extract message.eml", "otp-bot extract --json message.eml"),
    ),
    "simulate": (
        "serve a postpress simulator for dry runs",
        "Serve a local postpress simulator that mails LinkedIn-like codes to the account's\n"
        "mailbox, for a dry run against a real mailbox. Repeat --env-file to serve a fleet:\n"
        "each account by its own API key, at the same URL.",
        (
            "otp-bot simulate --env-file acme.env --port 8790",
            "otp-bot simulate --env-file a.env --env-file b.env --port 8790",
        ),
    ),
    "oauth2-token": (
        "print an XOAUTH2 access token",
        "Trade a refresh token (Gmail, Microsoft 365) or Microsoft 365 client credentials for\n"
        "an access token and print it: set it as OTP_BOT_IMAP_OAUTH2_TOKEN_COMMAND. Secrets\n"
        "are read from files (relative names in $CREDENTIALS_DIRECTORY), never from argv.",
        (
            "otp-bot oauth2-token --provider google --client-id ID.apps.googleusercontent.com "
            "--client-secret-file google-client-secret --refresh-token-file google-refresh-token",
            "otp-bot oauth2-token --provider microsoft --tenant contoso.onmicrosoft.com "
            "--client-id 00000000-0000-0000-0000-000000000000 "
            "--refresh-token-file m365-refresh-token "
            "--cache /var/lib/otp-bot/acme/m365-refresh-token",
        ),
    ),
}


def epilog(command: str) -> str:
    examples = COMMANDS[command][2]
    return "examples:\n" + "\n".join(f"  {line}" for line in examples)
