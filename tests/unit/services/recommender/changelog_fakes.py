"""An in-memory changelog and consumer for the partition protocol's unit tests: the real record format
(``changelog.py``) on a list instead of a broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from services.recommender.changelog import MARKER
from services.recommender.changelog_io import ChangelogLog


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()


class MemoryChangelog(ChangelogLog):
    """The changelog's logic (``ChangelogLog``) over lists of records (one per partition), shared by the
    replicas of a test like the topic is shared by the replicas of a group."""

    def __init__(self, snapshot_min_entries: int = 4, writer: str = "replica",
                 logs: dict[int, list[Record]] | None = None) -> None:
        super().__init__(writer, snapshot_min_entries)
        self.logs: dict[int, list[Record]] = {} if logs is None else logs
        self.fail_next_write = False

    def append(self, partition: int, key: bytes, value: bytes, headers: tuple = ()) -> Record:
        log = self.logs.setdefault(partition, [])
        record = Record("group.changelog", partition, len(log), key, value, headers)
        log.append(record)
        return record

    def view(self, writer: str) -> MemoryChangelog:
        """The same log, as another replica writes it (its own positions and flush ids)."""
        return MemoryChangelog(self.snapshot_min_entries, writer, self.logs)

    async def _end(self, partition: int) -> int:
        return len(self.logs.get(partition, []))

    async def _records(self, partition: int, start: int) -> list[Record]:
        return self.logs.get(partition, [])[start:]

    async def _append(self, partition: int, records: list[tuple[bytes, bytes]], headers: list) -> int:
        if self.fail_next_write:
            self.fail_next_write = False
            raise ConnectionError("the broker is unreachable")
        appended = [self.append(partition, k, v, tuple(headers)) for k, v in records]
        return appended[0].offset if appended else -1

    async def _append_marker(self, partition: int, value: bytes) -> int:
        return self.append(partition, MARKER, value).offset


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
