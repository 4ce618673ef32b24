"""A webhook event's body and signature: pure, so receivers can check them the same way.

The body is the event as compact JSON (keys sorted). The signature header is

    X-OtpBot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

as Stripe signs its webhooks: the timestamp is signed with the body, so a
receiver that refuses old timestamps (``verify``'s ``tolerance``) refuses
replays too. ``X-OtpBot-Event-Id`` repeats the event's id, by which a
receiver drops the duplicates that at-least-once delivery may bring.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-OtpBot-Signature"
EVENT_ID_HEADER = "X-OtpBot-Event-Id"
# The type of every event sent: one draft changed state.
EVENT_TYPE = "draft.state_changed"
# A receiver should refuse signatures older (or newer) than this many seconds.
DEFAULT_TOLERANCE = 300


def event_body(event: Mapping[str, Any]) -> bytes:
    """The JSON body sent for one event (a row of the event table)."""
    payload = {"type": EVENT_TYPE, **event}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: bytes, header: str, body: bytes, now: float, tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` within ``tolerance`` of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(stamp), body), given)
