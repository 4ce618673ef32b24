"""`otp-bot health`'s one line: a list for a few accounts, a count for a fleet."""

from __future__ import annotations

from otp_bot.control.client import HEALTH_LINE_ACCOUNTS, Reply, health_line


def body(watching: int, total: int) -> dict[str, object]:
    accounts = [
        {"account_id": f"acc_{i}", "mailbox": "watching" if i < watching else "connecting"}
        for i in range(total)
    ]
    return {"status": "ok", "watching": watching, "accounts": accounts}


def test_few_accounts_listed() -> None:
    """Up to the threshold, each account is named with its mailbox state."""
    line = health_line(Reply(200, body(2, 3)))
    assert line == "healthy: acc_0 watching, acc_1 watching, acc_2 connecting"


def test_fleet_counted() -> None:
    """Past it, the line says how many of how many accounts watch."""
    total = HEALTH_LINE_ACCOUNTS + 490
    assert health_line(Reply(200, body(450, total))) == f"healthy: 450 of {total} accounts watching"
