"""Metrics follow Prometheus conventions, and the shipped alert rules and Grafana
dashboard name only metrics that exist (promtool checks and unit-tests the rules)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from otp_bot import __version__
from otp_bot.daemon.metrics import Metrics, count_states, error_label

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "otp-bot.json"
# A metric name inside a PromQL expression.
METRIC_REF = re.compile(r"\b((?:otp_bot|process|python)_[a-z0-9_]+)\b")


def populated() -> Metrics:
    """Metrics with one event of every kind, so every series exists."""
    metrics = Metrics()
    metrics.email("acme", "trusted")
    metrics.email("acme", "rejected")
    metrics.submission("acme", "published")
    metrics.draft_finished("acme", "published", None)
    metrics.draft_finished("acme", "failed", "errors/resource_not_found")
    metrics.api_error("acme", "errors/provider_error")
    metrics.latency("acme", "link", 3.0)
    metrics.set_drafts("acme", count_states({"queued": 1, "awaiting_code": 1}))
    metrics.set_health("acme", up=True, last_progress_unix=1_764_000_000.0)
    metrics.set_held("acme", held=False)
    metrics.set_api_reachable("acme", reachable=True)
    metrics.webhook("acme", "delivered")
    metrics.mail_lag("acme", 0.5)
    metrics.after_use_failure("acme", "move")
    metrics.unreadable("acme", "too_slow")
    return metrics


def exported() -> dict[str, str]:
    """Sample name -> its family's type, as a scrape sees them."""
    text = populated().render().decode()
    return {s.name: f.type for f in text_string_to_metric_families(text) for s in f.samples}


def test_no_created_series() -> None:
    """No `_created` series (they double the counters and mean nothing to the queries)."""
    assert not [name for name in exported() if name.endswith("_created")]


def test_names_follow_prometheus_conventions() -> None:
    """Counters end in _total, durations in _seconds, Unix times in _timestamp_seconds."""
    for name, kind in exported().items():
        if not name.startswith("otp_bot_"):
            continue
        if kind == "counter":
            assert name.endswith("_total"), name
        if "timestamp" in name:
            assert name.endswith("_timestamp_seconds"), name
        if kind == "histogram":
            assert re.search(r"_seconds_(bucket|count|sum)$", name), name


def test_build_info_and_process_metrics() -> None:
    """otp_bot_build_info carries the version (value 1); process and python metrics are there."""
    text = populated().render().decode()
    assert 'otp_bot_build_info{python="' in text
    assert f'version="{__version__}"}} 1.0' in text
    names = exported()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds", "python_info"):  # fmt: skip
        assert name in names, name


def test_verdicts_do_not_overlap() -> None:
    """sum() over otp_bot_emails_total counts each e-mail once (no "seen" beside the verdicts)."""
    metrics = Metrics()
    for verdict in ("trusted", "rejected", "rejected"):
        metrics.email("acme", verdict)
    text = metrics.render().decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "otp_bot_emails_total"]  # fmt: skip
    assert sum(s.value for s in samples) == 3


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (None, ""),
        ("errors/resource_not_found", "errors/resource_not_found"),
        ("errors/made_up_by_the_api_" + "x" * 500, "errors/other"),
        ("input_lost", "input_lost"),
        ("ProtocolError", "ProtocolError"),
        ("a sentence with spaces", "other"),
    ],
)
def test_error_label_is_bounded(error: str | None, label: str) -> None:
    """A failed draft's error becomes a label only from a bounded set."""
    assert error_label(error) == label


def alert_expressions() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    return exprs


@pytest.mark.parametrize(("where", "exprs"), [("alerts", alert_expressions()),
                                              ("dashboard", dashboard_expressions())])  # fmt: skip
def test_queries_name_only_existing_metrics(where: str, exprs: list[str]) -> None:
    """Every metric an alert or a dashboard panel queries is exported under that name."""
    names = exported()
    referenced = {name for expr in exprs for name in METRIC_REF.findall(expr)}
    assert len(referenced) >= 5, referenced
    assert sorted(referenced - set(names)) == [], where


def test_dashboard_is_well_formed() -> None:
    """Unique panel ids, every query on the templated data source, every panel placed."""
    board = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["targets"], panel["title"]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: run `make test`, which installs it")
    return subprocess.run(["promtool", *args], cwd=ALERTS.parent, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts deploy/prometheus/alerts.yaml."""
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in result.stdout


def test_promtool_unit_tests_the_alerts() -> None:
    """`promtool test rules`: the alerts fire (and stay quiet) on the series they are meant for."""
    result = promtool("test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
