"""Metric definitions shared by every service, named ``clipstream_<service>_<what>_<unit>``.

Metrics are created once per (service, name) and reused, so building an app twice in one
process (tests do) does not register duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info

NAMESPACE = "clipstream"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

_metrics: dict[str, object] = {}


def metric_name(service: str, what: str, unit: str = "") -> str:
    return "_".join(part for part in (NAMESPACE, service, what, unit) if part)


def _get(kind, name: str, doc: str, labels: Sequence[str] = (), registry: CollectorRegistry = REGISTRY, **kw):
    metric = _metrics.get(name)
    if metric is None:
        metric = kind(name, doc, list(labels), registry=registry, **kw)
        _metrics[name] = metric
    return metric


def counter(service: str, what: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    return _get(Counter, metric_name(service, what, "total"), doc, labels)


def histogram(service: str, what: str, doc: str, labels: Sequence[str] = (), buckets=LATENCY_BUCKETS) -> Histogram:
    return _get(Histogram, metric_name(service, what, "seconds"), doc, labels, buckets=buckets)


def gauge(service: str, what: str, unit: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    return _get(Gauge, metric_name(service, what, unit), doc, labels)


def info(service: str, what: str, doc: str) -> Info:
    return _get(Info, metric_name(service, what), doc)


@dataclass(frozen=True)
class ConsumerMetrics:
    messages: Counter
    dead_letters: Counter
    handle_seconds: Histogram


@cache
def consumer_metrics(service: str) -> ConsumerMetrics:
    return ConsumerMetrics(
        messages=counter(service, "messages", "Messages consumed, by topic and outcome (ok, dead_lettered).", ("topic", "outcome")),
        dead_letters=counter(service, "dlq_messages", "Messages sent to a dead-letter topic, by source topic and reason.", ("topic", "reason")),
        handle_seconds=histogram(service, "handle_duration", "Time to handle one message, by topic.", ("topic",)),
    )


@cache
def published_counter(service: str) -> Counter:
    return counter(service, "published_messages", "Messages published, by topic.", ("topic",))
