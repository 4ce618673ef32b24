"""Shared fixtures: a private Dovecot (or another IMAP server) per test that needs one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import courier, imap_servers
from tests import dovecot as dc

# Every server the mailbox tests that matter run against (``imap_server``).
SERVERS = ("dovecot", "pymap", "courier")


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


AnyServer = dc.Dovecot | imap_servers.Pymap | courier.Courier


def new_server(name: str) -> AnyServer:
    if name == "dovecot":
        if not dc.available():
            pytest.fail("dovecot is not installed: run `make test`, which installs it")
        return dc.Dovecot()
    if name == "courier":
        if not courier.available():
            pytest.fail("courier-imap is not unpacked: run `make test` (.ci/install-courier.sh)")
        return courier.Courier()
    return imap_servers.Pymap()


@pytest.fixture(params=SERVERS)
def imap_server(request: pytest.FixtureRequest) -> Iterator[AnyServer]:
    """Each real IMAP server in turn, running on a free loopback port, removed afterwards."""
    server = new_server(request.param).start()
    try:
        yield server
    finally:
        server.cleanup()
