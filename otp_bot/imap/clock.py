"""The mail server's clock against ours, read without writing anything.

IMAP has no "what time is it" command, but RFC 5032 (WITHIN) has ``SEARCH
YOUNGER n``: the messages whose arrival (INTERNALDATE) is less than ``n``
seconds before the server's *now*. Asking it about one message whose
arrival we know, for a few ``n``, brackets the server's now; a binary search
over the offset gives it to about a second in ``log2(2 * RANGE)`` searches.

Without WITHIN only a one-sided bound remains: a newest message stamped in
our future proves the server's clock ahead of ours by at least that much.
"""

from __future__ import annotations

import imaplib
import math
import time
from datetime import datetime

# Offsets beyond a day are reported as "more than a day"; 18 searches at most.
RANGE = 86_400.0
# The search stops when the bracket is this narrow (INTERNALDATE has whole seconds).
PRECISION = 1.0


def server_offset(client: imaplib.IMAP4, uid: int, arrival: datetime) -> float | None:
    """Seconds the server's clock is ahead of ours (negative: behind), clamped to
    ±RANGE; None when the server lacks WITHIN or refuses the search."""
    low, high = -RANGE, RANGE
    while high - low > PRECISION:
        middle = (low + high) / 2
        younger = _younger(client, uid, arrival, middle)
        if younger is None:
            return None
        if younger:
            high = middle  # server_age < our_age + middle: the offset is below middle
        else:
            low = middle
    return (low + high) / 2


def _younger(client: imaplib.IMAP4, uid: int, arrival: datetime, offset: float) -> bool | None:
    """Is ``uid`` younger than (our age of it + offset) seconds by the server's clock?"""
    our_age = time.time() - arrival.timestamp()
    seconds = math.ceil(our_age + offset)
    if seconds < 1:
        return False  # nothing is younger than 0 s: the server's age is at least this
    typ, data = client.uid("SEARCH", f"UID {uid} YOUNGER {seconds}")
    if typ != "OK":
        return None
    first = data[0] if data else b""
    return isinstance(first, bytes) and str(uid).encode() in first.split()
