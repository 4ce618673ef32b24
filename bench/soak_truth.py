"""The soak's verdicts, from ground truth: the simulator's record and the files left behind.

Pure functions over what ``GET /_sim/requests`` and ``GET /_sim/mails``
return (one simulator per account) and over bytes read from logs, the state
database and ``/proc``. Nothing here asks the bot what it did.

- ``reused``: an input sent for a draft under two Idempotency-Keys, accepted
  under two keys, or sent for two drafts;
- ``foreign``: a submission whose input is not the code or link of the most
  recent genuine e-mail the draft's checkpoint had when the input was first
  sent (decoys, stale e-mails, other drafts' codes);
- ``latencies``: e-mail APPENDed → first request carrying its input.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otp_bot.logs import mask_code, mask_link

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Submission:
    """One logical submission: a draft, an Idempotency-Key and the input sent under it."""

    draft_id: str
    key: str
    value: str
    first_at: float  # when the simulator first received it
    accepted: bool  # some request under this key was answered 200


@dataclass
class Truth:
    """What the simulators' records say about every input the bot sent."""

    submissions: list[Submission] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)  # one line per offence
    foreign: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds


def submissions(requests: Iterable[Record]) -> list[Submission]:
    """Checkpoint requests grouped by (draft, key), in order of first receipt."""
    grouped: dict[tuple[str, str], Submission] = {}
    for request in requests:
        body = request.get("body")
        if request["endpoint"] != "checkpoint" or not request["authorized"]:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("input"), str):
            continue
        ident = (request["draft_id"], str(request["idempotency_key"]))
        ok = request["status"] == 200
        seen = grouped.get(ident)
        if seen is None:
            grouped[ident] = Submission(*ident, body["input"], request["at"], ok)
        elif ok and not seen.accepted:
            grouped[ident] = Submission(*ident, seen.value, seen.first_at, True)
    return sorted(grouped.values(), key=lambda s: s.first_at)


def judge(requests: Iterable[Record], mails: Iterable[Record]) -> Truth:
    """Reused and foreign inputs, and e-mail → submit latencies, for one simulator's record."""
    truth = Truth(submissions(requests))
    genuine = sorted((m for m in mails if m["genuine"]), key=lambda m: m["issued_at"])
    by_value: dict[str, list[Submission]] = {}
    for sub in truth.submissions:
        by_value.setdefault(sub.value, []).append(sub)
        _check_source(sub, genuine, truth)
    for value, subs in by_value.items():
        if len(subs) > 1:  # under two keys (so possibly accepted twice), or for two drafts
            accepted = sum(s.accepted for s in subs)
            drafts = sorted({s.draft_id for s in subs})
            truth.reused.append(
                f"{_mask(value)} sent under {len(subs)} keys ({accepted} accepted) for {drafts}"
            )
    return truth


def _check_source(sub: Submission, genuine: list[Record], truth: Truth) -> None:
    mine = [m for m in genuine if m["draft_id"] == sub.draft_id and m["issued_at"] <= sub.first_at]
    current = mine[-1] if mine else None
    if current is None or sub.value not in (current["code"], current["link"]):
        origin = next((m for m in genuine if sub.value in (m["code"], m["link"])), None)
        where = "a decoy or unknown" if origin is None else f"a mail of {origin['draft_id']}"
        if origin is not None and current is not None and origin is not current:
            where += " (stale)" if origin["draft_id"] == sub.draft_id else ""
        truth.foreign.append(f"{sub.draft_id}: {_mask(sub.value)} came from {where}")
        return
    if current["delivered_at"]:
        truth.latencies.append(sub.first_at - current["delivered_at"][0])


def _mask(value: str) -> str:
    return mask_link(value) if value.startswith("http") else mask_code(value)


def percentile(values: list[float], pct: float) -> float | None:
    """The pct-th percentile (inclusive method), None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


# --- audits over bytes ---------------------------------------------------------------


def count_hits(blob: bytes, secrets: Iterable[str]) -> int:
    """How many times any of the secrets occurs in ``blob``."""
    return sum(blob.count(secret.encode()) for secret in secrets if secret)


def raw_inputs_in_log(text: str, codes: Iterable[str], links: Iterable[str]) -> dict[str, int]:
    """Log events (by name) that carry a delivered code or link in clear, and how often.

    A code counts when a field's value holds it between non-digits (so a job
    id or a timestamp's microseconds do not); timestamps are skipped.
    """
    code_set = set(codes)
    link_list = [link for link in links if link]  # the whole link, and its token alone
    link_list += [m.group(1) for link in link_list if (m := re.search(r"token=([^&]+)", link))]
    pattern = re.compile(r"(?<!\d)(\d{4,8})(?!\d)")
    found: dict[str, int] = {}
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            item = {"event": "(not json)", "line": line}
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            if key == "timestamp" or _is_datetime(shown):
                continue
            digits = set(pattern.findall(shown)) & code_set
            if digits or any(link in shown for link in link_list):
                name = f"{item.get('event', '?')}.{key}"
                found[name] = found.get(name, 0) + 1
    return found


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
