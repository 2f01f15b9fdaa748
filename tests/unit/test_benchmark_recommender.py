"""The recommender benchmark's pure helpers (``benchmarks/recommender.py``): what its figures rest on."""

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from benchmarks.recommender import histogram_buckets, quantile_between


def test_the_apply_lag_quantile_between_two_reads_of_a_histogram_is_prometheus_histogram_quantile():
    """Only what was counted between the reads; linear inside the bucket; past the last finite bound, that bound."""
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "test", buckets=(0.01, 0.1, 1.0), registry=registry)

    def buckets() -> dict[float, float]:
        return histogram_buckets(generate_latest(registry).decode(), "lag_seconds")

    for _ in range(50):
        lag.observe(5.0)  # before the first read: not counted
    before = buckets()
    assert quantile_between(before, before, 0.5) is None, "nothing counted between the reads"
    for value in [0.005] * 50 + [0.05] * 40 + [0.5] * 9 + [3.0]:
        lag.observe(value)
    after = buckets()
    assert quantile_between(before, after, 0.5) == pytest.approx(0.01)  # the 50th of 100 ends the first bucket
    assert quantile_between(before, after, 0.7) == pytest.approx(0.01 + 0.09 * 20 / 40)
    assert quantile_between(before, after, 0.95) == pytest.approx(0.1 + 0.9 * 5 / 9)
    assert quantile_between(before, after, 0.999) == pytest.approx(1.0), "past the last finite bound: that bound"
