"""Every replica's view of every partition's statistics: the changelog, followed from each partition's
latest full snapshot, into :class:`GlobalStats` (users are skipped). Replicas that read the same flushes
rank with the same popularity, co-visitation and ranker weights, whichever partitions they own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from services.recommender import metrics
from services.recommender.changelog import Assembler, ChangelogError, WrittenFlushes
from services.recommender.changelog_io import KafkaChangelog
from services.recommender.core.global_stats import GlobalStats
from shared.replay import Tail

log = logging.getLogger(__name__)


async def starts(changelog: KafkaChangelog, partitions: int) -> dict[int, int]:
    """Where to start reading each changelog partition: its latest full snapshot (0 without one)."""
    out = {}
    for partition in range(partitions):
        marker, _ = await changelog.last(partition)
        out[partition] = max(0, marker.base) if marker is not None else 0
    return out


def apply_batch(records: list, assemblers: dict[int, Assembler], stats: GlobalStats,
                written: WrittenFlushes | None = None) -> int:
    """Fold a batch of changelog records into ``stats``; returns the flushes applied. A record that fails to
    decode is counted and its partition's pending flush dropped (its next complete flush applies again).
    ``written``: this replica's own flushes, taken from there instead of decoded (the same rows)."""
    return sum(_fold(records, assemblers, stats, written))


def _fold(records: list, assemblers: dict[int, Assembler], stats: GlobalStats,
          written: WrittenFlushes | None) -> Iterator[int]:
    """:func:`apply_batch` in steps (``GlobalStats.steps``): yields 0 between steps of a flush's merge and 1
    when a flush is applied."""
    for record in records:
        assembler = assemblers.setdefault(record.partition, Assembler(users=False, written=written))
        try:
            done = assembler.feed(record)
        except ChangelogError as exc:
            metrics.changelog_rejected.inc()
            log.error("changelog[%d]@%d: %s; skipped in the shared statistics", record.partition, record.offset, exc)
            assembler.reject()
            continue
        if done is not None:
            marker, rows = done
            for _ in stats.steps(record.partition, rows, marker.snapshot):
                yield 0
            yield 1


async def follow(tail: Tail, stats: GlobalStats, group: str, written: WrittenFlushes | None = None) -> None:
    """Read ``tail`` (opened at :func:`starts`) into ``stats`` for as long as the replica runs, letting the
    event loop run between steps of a flush's merge (feeds and the consumer wait a step, not a flush)."""
    assemblers: dict[int, Assembler] = {}
    async for records in tail.batches():
        for _ in _fold(records, assemblers, stats, written):
            await asyncio.sleep(0)
        metrics.report_lag(tail.topic, group, tail.lag())
