"""Compact labelled series (daemon/series.py) export exactly what prometheus-client's own would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from otp_bot.daemon.metrics import LATENCY_BUCKETS
from otp_bot.daemon.series import CounterSeries, GaugeSeries, HistogramSeries


def _observations(seed: int) -> list[tuple[str, str, float]]:
    """(account, form, value): values on, between and beyond the bucket bounds."""
    rng = random.Random(seed)
    edges = [*LATENCY_BUCKETS, 0.0, 1e6, 0.2500001]
    return [
        (
            f"acc_{rng.randrange(5)}",
            rng.choice(["code", "link"]),
            rng.choice(edges) if rng.random() < 0.3 else rng.uniform(0, 400),
        )
        for _ in range(300)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_same_exposition_as_prometheus_client(seed: int) -> None:
    """Counters, gauges and histograms fed the same values render the same /metrics text."""
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    labels = ["account", "input"]
    counter = Counter("t_events", "Events.", labels, registry=theirs)
    gauge = Gauge("t_level", "Level.", labels, registry=theirs)
    histogram = Histogram("t_seconds", "Time.", labels, buckets=LATENCY_BUCKETS, registry=theirs)
    our_counter = CounterSeries("t_events", "Events.", labels, ours)
    our_gauge = GaugeSeries("t_level", "Level.", labels, ours)
    our_histogram = HistogramSeries("t_seconds", "Time.", labels, ours, LATENCY_BUCKETS)
    for account, form, value in _observations(seed):
        counter.labels(account=account, input=form).inc(2)
        our_counter.inc(2, account=account, input=form)
        gauge.labels(account=account, input=form).set(value)
        our_gauge.set(value, account=account, input=form)
        histogram.labels(account=account, input=form).observe(value)
        our_histogram.observe(value, account=account, input=form)
    text = generate_latest(ours).decode()
    assert text == generate_latest(theirs).decode()
    assert 'le="0.25"' in text
    assert "t_events_total{" in text


def test_wrong_labels_are_refused() -> None:
    """A missing or unknown label name raises instead of making a series of its own."""
    series = CounterSeries("t_refused", "Refused.", ["account"], CollectorRegistry())
    with pytest.raises(ValueError, match="labels"):
        series.inc(account="a", extra="b")
    with pytest.raises(ValueError, match="labels"):
        series.inc()


def test_counter_only_goes_up() -> None:
    """A negative increment is refused, as prometheus-client refuses it."""
    series = CounterSeries("t_up", "Up.", ["account"], CollectorRegistry())
    with pytest.raises(ValueError, match="only goes up"):
        series.inc(-1, account="a")
