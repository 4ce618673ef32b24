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


def test_many_secrets_one_pattern_built_once(stream: io.StringIO) -> None:
    """A thousand secrets, overlapping prefixes included, are all removed by one pattern
    that neither a new code nor another log line rebuilds."""
    many = [f"pp_live_{i:04d}_key" for i in range(1000)] + ["pp_live_0001_key_longer"]
    logs.register_secrets(many)
    log = structlog.get_logger("t")
    log.info("api_call", detail=f"keys {many[7]} and {many[-1]} and {many[999]}")
    built = logs._registry.patterns()
    logs.remember_sensitive("731904")
    log.info("api_call", detail=f"key {many[500]} code 731904")
    assert logs._registry.patterns() == built
    text = stream.getvalue()
    for secret in (many[7], many[-1], many[999], many[500], "731904", "_longer"):
        assert secret not in text


def test_long_token_and_rotation(stream: io.StringIO) -> None:
    """A 4 kB OAuth token is redacted; an owner keeps only its newest tokens."""
    tokens = [f"ya29.{i}" + "x" * 4000 for i in range(4)]
    for token in tokens:
        logs.register_secrets([token], owner="imap:acc_1")
    structlog.get_logger("t").info("oauth", note=f"a {tokens[3]} b {tokens[2]} c")
    assert tokens[3] not in stream.getvalue()
    assert tokens[2] not in stream.getvalue()
    assert logs.scrub_text(tokens[0]) == tokens[0]  # rotated out: no longer kept


def test_free_text_codes_and_links_by_shape(stream: io.StringIO) -> None:
    """Codes inside longer digit runs are masked; any link loses its query in free text."""
    logs.remember_sensitive("552210")
    text = logs.scrub_text("ref 99552210123 and www.linkedin.com/comm/x?tok=Zz9 end 123456789")
    assert "552210" not in text
    assert "tok=Zz9" not in text
    assert text.endswith("end 123456789")
    assert "www.linkedin.com/comm/x?…" in text


def test_timestamps_never_masked(stream: io.StringIO) -> None:
    """A remembered code equal to a timestamp's microseconds leaves the timestamp whole."""
    logs.remember_sensitive("584906")
    line = {"timestamp": "2026-12-02T02:13:22.584906Z", "event": "x", "note": "code 584906"}
    redacted = logs.redact(None, "info", dict(line))
    assert redacted["timestamp"] == line["timestamp"]
    assert redacted["note"] == "code ****"
