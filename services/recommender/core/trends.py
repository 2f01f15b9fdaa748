"""What is rising in the watch stream: topics and concepts whose engaged views in the last window exceed the
window before by a Poisson z of at least ``MIN_Z`` and at least ``MIN_EVENTS`` views (pure functions over
:class:`~services.recommender.core.stats.TrendCounts` rows, merged over every partition)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MIN_Z = 3.0
MIN_EVENTS = 20
WINDOWS = {"1h": 3600, "24h": 86400}


@dataclass(frozen=True)
class Trend:
    kind: str  # topic or concept
    name: str
    now: int  # views in the window
    before: int  # views in the window before it
    z: float  # (now - before) / sqrt(max(before, 1)): the rise in standard deviations of a Poisson count


def window_sums(row: Mapping[str, float], end_bucket: int, width: int) -> tuple[int, int]:
    """(views in buckets (end - width, end], views in the ``width`` buckets before those)."""
    now = before = 0.0
    for name, count in row.items():
        age = end_bucket - int(name)
        if 0 <= age < width:
            now += count
        elif width <= age < 2 * width:
            before += count
    return int(now), int(before)


def rising(counts: Mapping[str, Mapping[str, float]], now_s: float, window_s: int, bucket_s: int,
           min_z: float = MIN_Z, min_events: int = MIN_EVENTS) -> list[Trend]:
    """The keys rising fastest, strongest first. The window ends at the last complete bucket before ``now_s``
    (a bucket still filling would read as a fall)."""
    end = int(now_s // bucket_s) - 1
    width = max(1, window_s // bucket_s)
    out = []
    for key, row in counts.items():
        kind, _, name = key.partition(":")
        now, before = window_sums(row, end, width)
        z = (now - before) / math.sqrt(max(before, 1))
        if now >= min_events and z >= min_z:
            out.append(Trend(kind, name, now, before, round(z, 2)))
    return sorted(out, key=lambda t: (-t.z, -t.now, t.kind, t.name))


def keys_of(topic: str | None, concepts: tuple[str, ...], n_concepts: int = 3) -> list[str]:
    """The trend keys one view of a video counts towards: its topic and its strongest concepts."""
    keys = [f"topic:{topic}"] if topic else []
    return keys + [f"concept:{c}" for c in concepts[:n_concepts]]
