"""Prometheus: a custom collector that reads seawall's counts when scraped."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.core import (
    Metric as PromMetric,
)
from prometheus_client.registry import Collector

from seawall.metrics import _config
from seawall.metrics._catalogue import CATALOGUE, Metric
from seawall.metrics._readings import Reading, read_all

__all__ = ["SeawallCollector", "families"]


def _family(metric: Metric) -> CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily:
    labels = list(metric.labels)
    if metric.kind == "counter":
        return CounterMetricFamily(metric.name, metric.help, labels=labels)
    if metric.kind == "gauge":
        return GaugeMetricFamily(metric.name, metric.help, labels=labels)
    return HistogramMetricFamily(metric.name, metric.help, labels=labels)


def _fill(reading: Reading) -> PromMetric:
    metric = reading.metric
    family = _family(metric)
    if isinstance(family, HistogramMetricFamily):
        bounds = [repr(float(bound)) for bound in metric.buckets] + ["+Inf"]
        for labels, (counts, total) in sorted(reading.histograms.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(list(labels), cumulative, sum_value=total)
    else:
        for labels, value in sorted(reading.values.items()):
            family.add_metric(list(labels), value)
    return family


def families(readings: dict[str, Reading] | None = None) -> Iterator[PromMetric]:
    """The catalogue as Prometheus metric families, skipping those with no series yet."""
    for reading in (read_all() if readings is None else readings).values():
        if reading.values or reading.histograms:
            yield _fill(reading)


class SeawallCollector(Collector):
    """Exposes every live seawall policy's series in the registry it is registered in.

    The policies keep their own counts; this only reads them, when the registry is scraped.
    """

    def collect(self) -> Iterable[PromMetric]:
        return list(families())

    def describe(self) -> Iterable[PromMetric]:
        # The names, for the registry's duplicate check; samples come with collect().
        return [_family(metric) for metric in CATALOGUE]


# Last: the out-of-the-box setup may have waited for this module (see _config.resume).
_config.resume(__name__)
