"""An in-memory changelog and consumer for the partition protocol's unit tests: the real record format
(``changelog.py``) on a list instead of a broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from services.recommender.changelog import FLUSH_HEADER, MARKER, Marker, encode_rows, last_marker, restore
from services.recommender.changelog_io import Position
from services.recommender.rows import Rows


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()


@dataclass
class MemoryChangelog:
    """The Changelog protocol of ``partitions.py`` over lists of records (one per partition), shared by the
    replicas of a test like the topic is shared by the replicas of a group."""

    logs: dict[int, list[Record]] = field(default_factory=dict)
    snapshot_min_records: int = 4
    writer: str = "replica"
    positions: dict[int, Position] = field(default_factory=dict)
    flushes: int = 0
    fail_next_write: bool = False

    def append(self, partition: int, key: bytes, value: bytes, headers: tuple = ()) -> Record:
        log = self.logs.setdefault(partition, [])
        record = Record("group.changelog", partition, len(log), key, value, headers)
        log.append(record)
        return record

    def view(self, writer: str) -> MemoryChangelog:
        """The same log, as another replica writes it (its own positions and flush ids)."""
        return MemoryChangelog(self.logs, self.snapshot_min_records, writer)

    async def last(self, partition: int) -> tuple[Marker | None, int]:
        log = self.logs.get(partition, [])
        return last_marker(log), len(log)

    async def load(self, partition: int, marker: Marker, end: int):
        restored = restore(self.logs.get(partition, [])[max(0, marker.base):])
        self.track(partition, restored.marker or marker, end, force=restored.marker is None)
        return restored

    def track(self, partition: int, marker: Marker | None, end: int, force: bool) -> None:
        if marker is None:
            self.positions[partition] = Position()
        else:
            self.positions[partition] = Position(marker.base, marker.snapshot_records, end - max(0, marker.base),
                                                 force or marker.base < 0)

    def forget(self, partition: int) -> None:
        self.positions.pop(partition, None)

    def wrote(self, marker: Marker) -> bool:
        return marker.flush.rsplit(":", 1)[0] == self.writer

    def wants_full(self, partition: int) -> bool:
        pos = self.positions.setdefault(partition, Position())
        return pos.force or pos.since_snapshot > max(self.snapshot_min_records, pos.snapshot_records)

    async def write(self, partition: int, rows: Rows, full: bool, generation: int) -> None:
        if self.fail_next_write:
            self.fail_next_write = False
            raise ConnectionError("the broker is unreachable")
        pos = self.positions.setdefault(partition, Position())
        self.flushes += 1
        flush = f"{self.writer}:{self.flushes}"
        encoded = encode_rows(rows)
        first = [self.append(partition, k, v, ((FLUSH_HEADER, flush.encode()),)) for k, v in encoded][:1]
        base = first[0].offset if full else pos.base
        size = len(encoded) if full else pos.snapshot_records
        marker = Marker(flush=flush, records=len(encoded), next_offset=rows.next_offset, snapshot=full, base=base,
                        snapshot_records=size, generation=generation, model_version=rows.model_version)
        self.append(partition, MARKER, marker.model_dump_json().encode())
        if full:
            pos.base, pos.snapshot_records, pos.force, pos.since_snapshot = base, size, False, len(encoded) + 1
        else:
            pos.since_snapshot += len(encoded) + 1


@dataclass
class FakeConsumer:
    """What ``Partitions`` asks of aiokafka's consumer: assignment, seeks, the log's first offsets."""

    generation: int = 1
    assigned: set[TopicPartition] = field(default_factory=set)
    seeks: list[tuple[int, int]] = field(default_factory=list)

    @property
    def _coordinator(self) -> Any:
        return self

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp.partition, offset))

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


@dataclass
class MemoryClaims:
    sent: list[tuple[int, int, bool]] = field(default_factory=list)  # (partition, generation, claimed)

    async def claim(self, partition: int, generation: int) -> None:
        self.sent.append((partition, generation, True))

    async def release(self, partition: int, generation: int) -> None:
        self.sent.append((partition, generation, False))
