"""Labelled metrics kept compactly and handed to prometheus-client when scraped.

prometheus-client keeps every labelled series as a metric object of its own,
with a lock per value: about 1.2 kB per counter or gauge series and 4 kB per
histogram series. An account has about 25 series (the drafts gauge alone has
one per state), so the metrics of 1,000 accounts took 16.9 MB. Here a series
is one dict entry: a float (counter, gauge) or a short list of bucket counts
and the sum (histogram), 1.7 MB for the same 1,000 accounts. ``collect``
builds the same families at scrape time, so ``/metrics`` reads the same.

Updated and collected on the event loop's thread (the control API renders
there); ``collect`` copies each dict in one step, so an update from elsewhere
could not break a scrape either.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Labels = tuple[str, ...]


class _Family(Collector):
    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        registry.register(self)

    def _labels(self, values: dict[str, str]) -> Labels:
        if values.keys() != set(self._labelnames):
            raise ValueError(f"{self._name}: labels {sorted(values)} != {list(self._labelnames)}")
        return tuple(str(values[name]) for name in self._labelnames)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> Metric:
        raise NotImplementedError


class _Scalar(_Family):
    """A labelled family of one float per series."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._values: dict[Labels, float] = {}

    def _family(self) -> CounterMetricFamily | GaugeMetricFamily:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for key, value in list(self._values.items()):
            family.add_metric(key, value)
        yield family


class CounterSeries(_Scalar):
    """A labelled counter (exported as ``name_total``)."""

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._labels(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)


class GaugeSeries(_Scalar):
    """A labelled gauge."""

    def set(self, value: float, **labels: str) -> None:
        self._values[self._labels(labels)] = float(value)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)


class HistogramSeries(_Family):
    """A labelled histogram: per series, the count in each bucket (not cumulative) and
    the sum, in one list."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._bounds = [float(b) for b in sorted(buckets)]
        # "le" as prometheus-client writes it (0.25, 1.0, +Inf); its helper is untyped.
        self._names = [*(floatToGoString(b) for b in self._bounds), "+Inf"]  # type: ignore[no-untyped-call]
        self._values: dict[Labels, list[float]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._labels(labels)
        counts = self._values.get(key)
        if counts is None:
            counts = self._values[key] = [0.0] * (len(self._names) + 1)  # buckets, sum
        # The first bucket whose upper bound is >= value (le is inclusive).
        counts[bisect.bisect_left(self._bounds, value)] += 1
        counts[-1] += value

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for key, counts in list(self._values.items()):
            cumulative, buckets = 0.0, []
            for name, count in zip(self._names, counts, strict=False):
                cumulative += count
                buckets.append((name, cumulative))
            family.add_metric(key, buckets, sum_value=counts[-1])
        yield family
