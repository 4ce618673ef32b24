"""``make demo``: the whole loop on this machine, in about ten seconds.

A private Dovecot holds the mailbox, ``otp-bot simulate`` plays postpress and
LinkedIn (it mails a fresh code or link for every checkpoint), and the real
daemon (``otp-bot run``) publishes three sample drafts through its control
API: a plain OTP, a chained EMAIL_VERIFICATION -> OTP, and a verification
link that has expired (the bot publishes again for a fresh e-mail). The
daemon's logs stream to this terminal; the script exits 0 once all three
are ``published``, non-zero with the reason otherwise.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from otp_bot.control.client import table  # noqa: E402 (after the sys.path line)
from tests import dovecot as dc  # noqa: E402
from tests.harness import Stack, wait_until  # noqa: E402

DRAFTS = {
    "demo-plain-otp": "a plain OTP checkpoint",
    "demo-chain-verify": "EMAIL_VERIFICATION, then OTP",
    "demo-verify-expired": "an expired verification link: published again",
}
ACCOUNT = "acc_linkedin_demo"
MAILBOX = "recruiting@example.test"
# Each draft takes one or two e-mails (Dovecot announces mail after ~0.5 s);
# 60 s leaves room for a slow machine.
DEADLINE = 60.0


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main() -> int:
    if not dc.available():
        print("demo: Dovecot is not installed (`make dovecot` installs it)", file=sys.stderr)
        return 1
    stack = Stack(log_format="console")
    try:
        return run(stack)
    except (AssertionError, RuntimeError, OSError) as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.close()


def run(stack: Stack) -> int:
    say("starting a private Dovecot, the postpress simulator and otp-bot")
    stack.start_dovecot([MAILBOX])
    account = stack.add_account(ACCOUNT, MAILBOX)
    daemon = stack.daemon(ACCOUNT)
    daemon.to_terminal = True
    started = time.monotonic()
    daemon.start_ready()
    say(f"daemon ready (mailbox watched): {daemon.messages[-1].splitlines()[-1]}")
    for draft_id, what in DRAFTS.items():
        draft = daemon.client.publish(draft_id)
        say(f"otp-bot publish {draft_id}   ({what}) -> {draft['state']}")

    def all_done() -> list[dict[str, object]] | None:
        drafts = daemon.client.drafts()
        return drafts if all(d["state"] in ("published", "failed") for d in drafts) else None

    drafts = wait_until("every demo draft to finish", all_done, DEADLINE, stack.logs())
    elapsed = time.monotonic() - started
    say(f"otp-bot status   (after {elapsed:.1f} s)")
    print(table(sorted(drafts, key=lambda d: list(DRAFTS).index(str(d["draft_id"])))))
    mails = account.simulator.mails()
    inputs = account.simulator.requests(endpoint="checkpoint")
    print(f"\n{len(mails)} e-mails sent by the simulated LinkedIn, {len(inputs)} inputs submitted")
    daemon.stop()
    failed = [d for d in drafts if d["state"] != "published"]
    if failed:
        print(f"\ndemo FAILED: not published: {[d['draft_id'] for d in failed]}", file=sys.stderr)
        return 1
    say("demo OK: every draft published")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
