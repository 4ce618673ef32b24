"""End to end: many accounts, one team. A second daemon on one state directory is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Stack, running_stack

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

USER = "team@example.test"


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh Dovecot with one shared mailbox; simulators and daemons added per test."""
    with running_stack([USER]) as stack:
        yield stack


def test_second_daemon_on_one_state_directory_exits_2_naming_the_first(stack: Stack) -> None:
    """A second daemon on the same env file (same state directory) exits 2 with the holder's
    PID on stderr, and the first one keeps publishing."""
    sim, first = stack.start_account("acc_one", USER)
    second = stack.daemon("acc_one")
    second.start()
    assert second.wait(timeout=30) == 2
    assert first.popen is not None
    assert f"PID {first.popen.pid}" in second.log.read_text(), second.tail()
    assert first.running
    sim.script("d-after-refusal", checkpoints=["OTP"])
    first.client.publish("d-after-refusal")
    assert first.wait_state("d-after-refusal", "published", "failed")["state"] == "published"
