"""Shared fixtures: a private Dovecot per test that needs one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import dovecot as dc


@pytest.fixture
def dovecot() -> Iterator[dc.Dovecot]:
    """A running plain-text Dovecot on a free loopback port, removed afterwards."""
    if not dc.available():
        pytest.fail("dovecot is not installed: run `make test`, which installs it")
    server = dc.Dovecot().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def dovecot_tls() -> Iterator[dc.Dovecot]:
    """A Dovecot with a certificate from a throwaway CA (implicit TLS and STARTTLS)."""
    if not dc.available():
        pytest.fail("dovecot is not installed: run `make test`, which installs it")
    server = dc.Dovecot(tls=True).start()
    try:
        yield server
    finally:
        server.cleanup()
