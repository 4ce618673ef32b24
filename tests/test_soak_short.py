"""The short soak (bench/soak.py): real processes under every fault kind, judged by ground truth.

Also the soak's judges on hand-made records, so a judge that could never
find an offence would fail here rather than pass the soak silently.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import dovecot as dc

REPO = Path(__file__).resolve().parent.parent
# The short soak's own bound (the 2 minutes, less start-up and teardown).
SHORT_LIMIT = 100.0


def _load(name: str) -> ModuleType:
    """A bench/ module (bench is not a package); bench/soak.py puts bench/ on sys.path."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


soak = _load("soak")
truth = _load("soak_truth")
soak_plan = _load("soak_plan")


def request(draft: str, key: str, value: str, at: float, status: int = 200) -> dict[str, Any]:
    body = {"account_id": "a", "input": value}
    return {
        "endpoint": "checkpoint",
        "draft_id": draft,
        "idempotency_key": key,
        "body": body,
        "authorized": True,
        "status": status,
        "outcome": "answered",
        "at": at,
    }


def mail(draft: str, code: str, issued: float, *, genuine: bool = True) -> dict[str, Any]:
    return {
        "draft_id": draft,
        "code": code,
        "link": None,
        "genuine": genuine,
        "issued_at": issued,
        "delivered_at": [issued + 0.1],
    }


def test_judge_counts_reuse_foreign_and_latency() -> None:
    """Same input under two keys is reuse; decoy, stale or other drafts' codes are foreign."""
    mails = [
        mail("d1", "111111", 10.0),
        mail("d1", "999999", 10.0, genuine=False),  # a decoy
        mail("d1", "222222", 20.0),  # re-published: 111111 is stale from here on
        mail("d2", "333333", 30.0),
    ]
    requests = [
        request("d1", "k1", "111111", 11.0, status=401),
        request("d1", "k1", "111111", 11.5, status=401),  # a retry: same key, not reuse
        request("d1", "k2", "999999", 12.0, status=401),  # the decoy's code
        request("d1", "k3", "111111", 21.0, status=401),  # stale, and a second key
        request("d1", "k4", "222222", 22.0),
        request("d2", "k5", "222222", 31.0, status=401),  # another draft's code
    ]
    judged = truth.judge(requests, mails)
    assert len(judged.submissions) == 5
    assert len(judged.reused) == 2  # 111111 under k1 and k3; 222222 for d1 and d2
    assert len(judged.foreign) == 3
    assert judged.latencies == pytest.approx([11.0 - 10.1, 22.0 - 20.1])
    assert "999999" not in json.dumps(judged.foreign)  # offences show masked inputs


def test_log_audit_finds_raw_codes_not_masked_ones_or_timestamps() -> None:
    """A clear code or link token in a log field is found; ****56 and microseconds are not."""
    link = "https://www.linkedin.com/psettings/email/confirm?token=Zq9_secretToken&trk=x"
    lines = [
        {"event": "mail_handled", "code": "****56", "timestamp": "2026-11-28T21:00:00.123456Z"},
        {"event": "oops", "detail": "sent 123456 to postpress"},
        {"event": "oops_link", "url": "token=Zq9_secretToken"},
        {"event": "job", "job_id": "41234567890"},
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    assert truth.raw_inputs_in_log(text, ["123456"], [link]) == {
        "oops.detail": 1,
        "oops_link.url": 1,
    }
    assert truth.count_hits(b"a pp_live_x b pp_live_x", ["pp_live_x", "absent"]) == 2


def test_plan_is_seeded_and_covers_every_kind() -> None:
    """The same seed gives the same plan; the short plan holds every fault kind, both kills,
    SIGHUP reloads and two accounts on one mailbox."""
    first = soak_plan.plan(16, 2, 5, soak.FaultPlan.short())
    again = soak_plan.plan(16, 2, 5, soak.FaultPlan.short())
    assert first.events == again.events
    assert first.scripts == again.scripts
    injected = first.injected()
    assert {*soak_plan.KINDS, soak_plan.LATE} <= {k for k, n in injected.items() if n}
    assert injected["dovecot_kill"] >= 1
    assert injected["daemon_kill"] >= 1
    assert injected["reload"] >= 1
    assert first.users[0] == first.users[1]  # the shared-mailbox pair


@pytest.mark.dovecot
@pytest.mark.slow
@pytest.mark.timeout(SHORT_LIMIT + 60)
def test_short_soak() -> None:
    """16 drafts, 2 accounts, every fault kind: none lost, reused, foreign or leaked; all end."""
    if not dc.available():
        pytest.fail("dovecot is not installed: run `make test`, which installs it")
    started = time.monotonic()
    report = soak.run_soak(16, 2, SHORT_LIMIT, 2026, soak.FaultPlan.short())
    print(report.table())
    print(f"short soak wall time: {time.monotonic() - started:.1f} s")
    assert report.lost == 0, report.offences
    assert report.reused == 0, report.offences
    assert report.foreign == 0, report.offences
    assert report.leaked == 0, report.leak_places
    assert report.unmasked == {}
    assert report.disagreements == 0, report.offences
    assert report.published + sum(report.failed.values()) == 16
    assert report.daemon_exit == 0
    assert report.observed["audit_bytes_logs"] > 0
    assert report.observed["audit_bytes_state"] > 0
    assert report.observed["audit_bytes_proc"] > 0
    assert report.observed["audit_control_hits_in_env_files"] >= 4  # 2 API keys, password, token
    served = report.observed  # the simulators really served the scripted faults
    for kind in ("fault_503", "fault_429", "fault_504", "timeout_after_accept", "replayed"):
        assert served.get(kind, 0) > 0, (kind, served)
