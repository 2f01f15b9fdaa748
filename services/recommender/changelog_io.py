"""The changelog on Kafka: writing a flush (records, then its commit marker) and reading a partition back.

The record format and the rules for reading it are in ``changelog.py``; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.recommender.changelog import (
    FLUSH_HEADER,
    MARKER,
    Marker,
    Restored,
    WrittenFlushes,
    encode_rows,
    last_marker,
    restore,
)
from services.recommender.rows import Rows
from shared.replay import read_partition

SCAN_START = 64  # records read back from the end to find the latest marker; grows 8x until one is found


@dataclass
class Position:
    """What the writer knows of one changelog partition."""

    base: int = -1  # offset of the latest full snapshot's first record
    snapshot_records: int = 0
    snapshot_entries: int = 0
    since_snapshot: int = 0  # entries written since that snapshot began (its own included)
    force: bool = True  # the next flush must be a full snapshot (nothing known, or the log is behind the state)


class ChangelogLog:
    """A replica's changelog for the partitions it owns: finding the latest marker, restoring, deciding
    between a delta and a full snapshot, and writing a flush, over four primitives a subclass gives
    (Kafka here, lists in the unit tests)."""

    def __init__(self, replica: str, snapshot_min_entries: int) -> None:
        self.replica = replica
        self.snapshot_min_entries = snapshot_min_entries
        self.positions: dict[int, Position] = {}
        self.flushes = 0
        self.written = WrittenFlushes()  # for this replica's own statistics reader (stats_reader.py)
        self.completed: dict[int, str] = {}  # partition -> this replica's latest flush of it with its marker written

    async def _end(self, partition: int) -> int:
        raise NotImplementedError

    async def _records(self, partition: int, start: int) -> list[Any]:
        raise NotImplementedError

    async def _append(self, partition: int, records: list[tuple[bytes, bytes]], headers: list) -> int:
        """Append ``records`` in order, each acknowledged; returns the first one's offset (-1: none)."""
        raise NotImplementedError

    async def _append_marker(self, partition: int, value: bytes) -> int:
        raise NotImplementedError

    # ---------------------------------------------------------------- reading

    async def last(self, partition: int) -> tuple[Marker | None, int]:
        """The latest decodable commit marker of ``partition`` (None: none) and the log's end offset."""
        end = await self._end(partition)
        window = SCAN_START
        while True:
            start = max(0, end - window)
            records = [] if end == 0 else await self._records(partition, start)
            end = max(end, records[-1].offset + 1 if records else 0)
            marker = last_marker(records)
            if marker is not None or start == 0:
                return marker, end
            window *= 8

    async def load(self, partition: int, marker: Marker, end: int) -> Restored:
        """The partition's state from its latest full snapshot to the end (ChangelogError: a record failed)."""
        restored = restore(await self._records(partition, max(0, marker.base)))
        self.track(partition, restored.marker or marker, end, force=restored.marker is None)
        return restored

    def track(self, partition: int, marker: Marker | None, end: int, force: bool) -> None:
        """Take over ``partition``'s log as found (``force``: the next flush is a full snapshot)."""
        if marker is None:
            self.positions[partition] = Position()
            return
        self.positions[partition] = Position(marker.base, marker.snapshot_records, marker.snapshot_entries,
                                             marker.entries, force or marker.base < 0)

    def forget(self, partition: int) -> None:
        self.positions.pop(partition, None)

    def wrote(self, marker: Marker) -> bool:
        """Whether this replica (this process) wrote the flush ``marker`` ends."""
        return marker.flush.rsplit(":", 1)[0] == self.replica

    # ---------------------------------------------------------------- writing

    def wants_full(self, partition: int) -> bool:
        """Whether the next flush of ``partition`` should be a full snapshot (see ``changelog.py``): it must
        (:meth:`must_full`), or the deltas since the last one outweigh it (a flush may then put it off)."""
        pos = self.positions.setdefault(partition, Position())
        after = pos.since_snapshot - pos.snapshot_entries  # written since the snapshot
        return pos.force or after > max(self.snapshot_min_entries, pos.snapshot_entries)

    def must_full(self, partition: int) -> bool:
        """Whether the next flush of ``partition`` must be a full snapshot: nothing is known of its log, or the log
        is behind the state."""
        return self.positions.setdefault(partition, Position()).force

    async def write(self, partition: int, rows: Rows, full: bool, generation: int,
                    delta: Rows | None = None) -> list[tuple[bytes, bytes]]:
        """The flush's records, then its marker, each acknowledged; raises if any write fails (the flush then
        never completes, and the caller stores the same changes again later). ``delta``: for a full snapshot,
        what changed since this replica's previous flush of the partition (for its own reader, never written).
        Returns the records as encoded (the local file appends the same bytes)."""
        pos = self.positions.setdefault(partition, Position())
        encoded = await asyncio.to_thread(encode_rows, rows)
        self.flushes += 1
        flush = f"{self.replica}:{self.flushes}"
        self.written.keep(flush, rows, delta if full else None, self.completed.get(partition))
        first = await self._append(partition, encoded, [(FLUSH_HEADER, flush.encode())])
        entries = rows.entries
        if full:
            base, snapshot_records, snapshot_entries, since = first, len(encoded), entries, entries
        else:
            base, snapshot_records, snapshot_entries = pos.base, pos.snapshot_records, pos.snapshot_entries
            since = pos.since_snapshot + entries
        marker = Marker(flush=flush, records=len(encoded), next_offset=rows.next_offset, snapshot=full, base=base,
                        snapshot_records=snapshot_records, snapshot_entries=snapshot_entries, entries=since,
                        generation=generation, model_version=rows.model_version)
        await self._append_marker(partition, marker.model_dump_json().encode())
        self.completed[partition] = flush
        pos.since_snapshot = since
        if full:
            pos.base, pos.snapshot_records, pos.snapshot_entries, pos.force = base, snapshot_records, entries, False
        return encoded


class KafkaChangelog(ChangelogLog):
    """The changelog on ``topic`` (``<group>.changelog``): one producer for writes, one reader for restores."""

    def __init__(self, producer: AIOKafkaProducer, bootstrap: str, topic: str, replica: str,
                 snapshot_min_entries: int, idle_ms: int = 50) -> None:
        super().__init__(replica, snapshot_min_entries)
        self.producer = producer
        self.reader: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()
        self.idle_ms = idle_ms
        self.bootstrap = bootstrap
        self.topic = topic

    async def _consumer(self) -> AIOKafkaConsumer:
        """One reader for every restore of this replica (started once; reads take turns)."""
        if self.reader is None:
            reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                      fetch_max_wait_ms=self.idle_ms, max_partition_fetch_bytes=8 << 20)
            await reader.start()
            self.reader = reader
        return self.reader

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.stop()
            self.reader = None

    async def _end(self, partition: int) -> int:
        tp = TopicPartition(self.topic, partition)
        async with self.lock:
            return (await (await self._consumer()).end_offsets([tp]))[tp]

    async def _records(self, partition: int, start: int) -> list[Any]:
        async with self.lock:
            return await read_partition(await self._consumer(), TopicPartition(self.topic, partition), start,
                                        self.idle_ms)

    async def _append(self, partition: int, records: list[tuple[bytes, bytes]], headers: list) -> int:
        futures = []
        batch = self.producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await self.producer.send_batch(batch, self.topic, partition=partition))
                batch = self.producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"a changelog record of {len(value)} bytes does not fit a producer batch")
        if batch.record_count():
            futures.append(await self.producer.send_batch(batch, self.topic, partition=partition))
        acks = await asyncio.gather(*futures)
        return acks[0].offset if acks else -1

    async def _append_marker(self, partition: int, value: bytes) -> int:
        sent = await self.producer.send_and_wait(self.topic, value, key=MARKER, partition=partition)
        return sent.offset
