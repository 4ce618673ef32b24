"""Logging: JSON lines, UTC timestamps, and no secret, code or link leaking."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from otp_bot import logs

API_KEY = "pp_live_leaktest_4b1d9e77"
IMAP_PASSWORD = "hunter2-imap-Secret"
TOKEN = "ya29.a0AfH6SMBleaktoken"
CODE = "804211"
LINK = "https://www.linkedin.com/psettings/email/confirm?token=AQHsecretToken123&trk=x"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured as JSON into a buffer, with the three secrets registered."""
    buffer = io.StringIO()
    logs.configure("json", "debug", secrets=[API_KEY, IMAP_PASSWORD], stream=buffer)
    logs.register_secrets([TOKEN])
    yield buffer
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def assert_clean(text: str) -> None:
    for secret in (API_KEY, IMAP_PASSWORD, TOKEN, CODE, LINK, "AQHsecretToken123"):
        assert secret not in text


def test_json_line_shape(stream: io.StringIO) -> None:
    """One JSON object per line with event, level, UTC ISO timestamp and bound context."""
    logs.bind(account_id="acc_1")
    structlog.get_logger("t").info("mailbox_connected", uid=7)
    (line,) = lines(stream)
    assert line["event"] == "mailbox_connected"
    assert line["level"] == "info"
    assert line["account_id"] == "acc_1"
    assert line["uid"] == 7
    assert str(line["timestamp"]).endswith("Z")


def test_secrets_removed_everywhere(stream: io.StringIO) -> None:
    """Secrets vanish from values, nested values and free text."""
    log = structlog.get_logger("t")
    log.info("api_call", header=f"X-API-KEY: {API_KEY}", nested={"pw": [IMAP_PASSWORD]})
    log.warning("oauth_refreshed", note=f"got {TOKEN} from command")
    text = stream.getvalue()
    assert_clean(text)
    assert text.count(logs.REDACTED) == 3


def test_secrets_removed_from_tracebacks(stream: io.StringIO) -> None:
    """An exception whose message holds secrets is logged without them."""
    log = structlog.get_logger("t")
    try:
        raise RuntimeError(f"login failed for password {IMAP_PASSWORD} key {API_KEY}")
    except RuntimeError:
        log.exception("mailbox_error")
    text = stream.getvalue()
    assert "Traceback" in text
    assert "login failed" in text
    assert_clean(text)


def test_foreign_stdlib_logs_redacted(stream: io.StringIO) -> None:
    """Lines from libraries using the logging module are redacted too."""
    logging.getLogger("aiohttp.client").error("request with %s failed", API_KEY)
    assert_clean(stream.getvalue())
    assert lines(stream)[0]["event"] == "request with [REDACTED] failed"


def test_codes_and_links_masked(stream: io.StringIO) -> None:
    """The code, input and link fields are masked, and remembered values in free text."""
    logs.remember_sensitive(CODE)
    logs.remember_sensitive(LINK)
    log = structlog.get_logger("t")
    log.info("checkpoint_submitted", code=CODE, input=LINK, link=LINK)
    log.info("api_error", detail=f"input {CODE} did not pass; tried {LINK}")
    text = stream.getvalue()
    assert_clean(text)
    first, second = lines(stream)
    assert first["code"] == "****11"
    assert first["link"] == "https://www.linkedin.com/psettings/email/confirm?…"
    assert "did not pass" in str(second["detail"])


def test_scrub_text_for_cli_errors(stream: io.StringIO) -> None:
    """Text printed outside logging (CLI errors) goes through the same redaction."""
    assert logs.scrub_text(f"bad key {API_KEY}") == f"bad key {logs.REDACTED}"


def test_mask_helpers() -> None:
    """Masks keep just enough to tell values apart."""
    assert logs.mask_code("0042") == "****"
    assert logs.mask_code("12345678") == "******78"
    assert logs.mask_link("https://x.linkedin.com/a/b") == "https://x.linkedin.com/a/b"
