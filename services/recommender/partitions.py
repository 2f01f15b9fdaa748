"""The one owner of "a partition's state reflects source offset N": assignment, restore, position, flush and
changelog of the partitions this replica serves. The engine (``engine.py``) is handed each partition's state
and knows nothing of Kafka.

* **Position.** The state held in memory knows the offset it reflects. A record is folded in only when it
  is exactly at that position: an earlier one is already in the state (a redelivery), a later one means the
  fetch position is not where the state is (a seek that did not take, a batch fetched before a rebalance),
  and the consumer is sent back to the state's position. So the stored state and its offset stay exact
  whatever the fetch positions do.
* **Restore** at assignment, from the newest of: the local file (a cache, used when it is at least as new
  as the changelog), the changelog (another machine's flushes), or the source topic from its beginning (no
  changelog, or a changelog record that fails to decode: it is dead-lettered and counted, and the partition
  is never restored with a record missing). The restored state is written to the local file at once, so
  the deltas that follow always apply to the same base in both stores.
* **Flush**, between batches, at most every ``flush_interval_s``: the changes go to the changelog (records,
  then the commit marker), then to the local file; a failed write keeps them pending for the next flush.
  On revocation the partition is flushed before it is released, so its next owner resumes exactly there.
* **Claims.** Once a partition is restored, this replica claims it on the memberships topic (with the group
  generation and its URL); on revocation it releases it first (the gateway stops sending its users here).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

from services.recommender import metrics
from services.recommender.changelog import ChangelogError, Marker, Restored
from services.recommender.engine import PartitionState, Recommender, Snapshot
from services.recommender.rows import Rows
from services.recommender.state_store import open_store
from shared.ownership import partition_for
from shared.runtime.heap import settle_heap

log = logging.getLogger(__name__)
BATCH_END_WAIT_S = 30.0


class Changelog(Protocol):
    async def last(self, partition: int) -> tuple[Marker | None, int]: ...
    async def load(self, partition: int, marker: Marker, end: int) -> Restored: ...
    def track(self, partition: int, marker: Marker | None, end: int, force: bool) -> None: ...
    def forget(self, partition: int) -> None: ...
    def wrote(self, marker: Marker) -> bool: ...
    def wants_full(self, partition: int) -> bool: ...
    async def write(self, partition: int, rows: Rows, full: bool, generation: int,
                    delta: Rows | None = None) -> list[tuple[bytes, bytes]] | None: ...


class Claims(Protocol):
    async def claim(self, partition: int, generation: int) -> None: ...
    async def release(self, partition: int, generation: int) -> None: ...


DeadLetter = Callable[[Any, str], Awaitable[None]]
"""Dead-letters a changelog record (the aiokafka record, the reason)."""


def generation_of(consumer: Any) -> int:
    """The consumer group generation the consumer is in (-1: unknown, e.g. no group)."""
    generation = getattr(getattr(consumer, "_coordinator", None), "generation", None)
    return -1 if generation is None else int(generation)


class Partitions:
    def __init__(self, rec: Recommender, topic: str, partitions: int, *, flush_interval_s: float = 0.25,
                 changelog: Changelog | None = None, claims: Claims | None = None,
                 dead_letter: DeadLetter | None = None, consumer: Callable[[], Any] = lambda: None,
                 group: str = "") -> None:
        """``consumer``: returns the source topic's consumer (None before it exists); ``group``: its group
        (a metric label)."""
        self.rec = rec
        self.group = group
        self.topic = topic
        self.source_partitions = partitions  # of the source topic: a user's partition is computed over them
        self.flush_interval_s = flush_interval_s
        self.changelog = changelog
        self.claims = claims
        self.dead_letter = dead_letter
        self._consumer = consumer
        self.serving: set[int] = set()  # restored and claimed: per-user reads of these are answered here
        self.generation = -1
        self.dirty: set[int] = set()  # partitions whose state moved since it was last stored
        self.flushed_at = 0.0
        self.batch_at = 0.0  # when the last batch of events was handled (monotonic): how busy the stream is
        self.in_batch = False  # state is stored only between batches, never half way through one
        self.between_batches = asyncio.Event()
        self.between_batches.set()
        self.writer: asyncio.Task | None = None  # the flush in progress, one at a time
        self.sent_back: set[int] = set()  # partitions sent back to their position during this batch
        # revoked and not yet assigned again: a record of theirs in a batch that ran on while the revocation
        # awaited (aiokafka still lists them as assigned then) is skipped, never a reason to take them back
        self.leaving: set[int] = set()
        self.restoring: dict[int, asyncio.Task] = {}
        self.assignments = 0  # rebalances this replica has completed (an empty assignment counts)
        self.warm: dict[int, PartitionState] = {}  # revoked partitions kept until the rebalance ends

    @property
    def consumer(self) -> Any:
        return self._consumer()

    def ready(self) -> bool:
        """Assigned at least once and restoring nothing: what it was given, it serves."""
        return self.assignments > 0 and not self.restoring

    def serves(self, user_id: str) -> tuple[bool, int]:
        """Whether this replica answers per-user reads of ``user_id`` now, and the user's partition."""
        partition = partition_for(user_id, self.source_partitions)
        return partition in self.serving, partition

    # ---------------------------------------------------------------- consumer hooks (shared.consumer)

    async def admit(self, record: Any) -> bool:
        """Before a record is decoded: whether it is the next one the partition's state needs. A batch is
        open from its first record until ``after_batch``."""
        self.in_batch = True
        self.between_batches.clear()
        partition = record.partition
        expected = self.rec.position(partition)
        if expected is None:  # not loaded here: a record fetched before a rebalance, or a failed assignment
            metrics.events.labels("not_owned").inc()
            tp = TopicPartition(record.topic, partition)
            consumer = self.consumer
            if consumer is not None and tp in consumer.assignment() and partition not in self.sent_back \
                    and partition not in self.leaving:
                self.sent_back.add(partition)
                await self.take(tp)
            return False
        if record.offset < expected:
            metrics.events.labels("already_applied").inc()
            return False
        if record.offset > expected:
            metrics.events.labels("out_of_position").inc()
            consumer = self.consumer
            if consumer is not None and partition not in self.sent_back:
                self.sent_back.add(partition)
                log.warning("%s[%d]: fetched offset %d but the state is at %d; seeking back", record.topic,
                            partition, record.offset, expected)
                consumer.seek(TopicPartition(record.topic, partition), expected)
            return False
        return True

    def settled(self, record: Any) -> None:
        """A record at the position is done, applied or dead-lettered: the position moves past it."""
        self.rec.advance(record.partition, record.offset + 1)
        self.dirty.add(record.partition)

    async def own_position(self, tp: TopicPartition) -> int | None:
        """The position the log-end watch compares with the partition's end (the state's own)."""
        return self.rec.position(tp.partition)

    def restarted(self, tp: TopicPartition, start: int) -> None:
        """The broker lost its log: the state is kept and folds in the new log from ``start``."""
        if self.rec.position(tp.partition) is not None:
            self.rec.advance(tp.partition, start)
            self.dirty.add(tp.partition)

    async def after_batch(self, records: list[Any]) -> None:
        """Store state with its offsets, at most every ``flush_interval_s`` (a crash replays the rest)."""
        self.sent_back.clear()
        self.batch_at = time.monotonic()
        self.in_batch = False
        self.between_batches.set()
        self.report_lag()
        if time.monotonic() - self.flushed_at >= self.flush_interval_s:
            self.flush_soon()
        metrics.users.set(len(self.rec.user_partition))

    def report_lag(self) -> None:
        """Messages behind the partition's end, from the high watermark the last fetch reported."""
        consumer = self.consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            done = self.rec.position(tp.partition)
            if high is not None and done is not None:
                metrics.lag.labels(tp.topic, self.group, str(tp.partition)).set(max(0, high - done))

    # ---------------------------------------------------------------- assignment

    async def assigned(self, tps: list[TopicPartition]) -> None:
        consumer = self.consumer
        self.generation = generation_of(consumer)
        self.leaving.clear()
        try:
            await asyncio.gather(*(self.take(tp) for tp in tps))
        finally:
            for partition in [p for p in self.warm if p not in self.rec.partitions]:  # moved to another replica
                state = self.warm.pop(partition)
                if state.store is not None:
                    await asyncio.to_thread(state.store.close)
        self.assignments += 1
        settle_heap()  # the loaded state is long-lived: keep it out of every later full collection

    async def take(self, tp: TopicPartition) -> None:
        """Restore ``tp``'s partition (once, however many callers ask), seek to its position, claim it."""
        task = self.restoring.get(tp.partition)
        if task is None:
            task = self.restoring[tp.partition] = asyncio.create_task(self._take(tp))
            task.add_done_callback(lambda _t, p=tp.partition: self.restoring.pop(p, None))
        await asyncio.shield(task)

    async def _take(self, tp: TopicPartition) -> None:
        partition = tp.partition
        consumer = self.consumer
        if self.rec.position(partition) is None:
            await self.restore(partition)
        if consumer is not None:
            consumer.seek(tp, self.rec.position(partition))
        if self.claims is not None:
            await self.claims.claim(partition, self.generation)
        self.serving.add(partition)

    async def restore(self, partition: int) -> str:
        """Hold ``partition`` with the newest stored state (see the module note); returns the source used."""
        started = time.perf_counter()
        marker, end = (None, 0) if self.changelog is None else await self.changelog.last(partition)
        if self._keep_warm(partition, marker, end):
            state = self.rec.partitions[partition]
            self._restored("local", partition, state, time.perf_counter() - started, "kept in memory")
            return "local"
        # a garbled local file is only a cache: open_store moves it aside, and the restore goes on as if there were none
        store, local, _ = await asyncio.to_thread(open_store, self.rec.settings.state_dir, self.topic, partition,
                                                  self.rec.settings.snapshot_min_entries)
        source, rows, rewrite = "local", local, False
        if marker is not None and (local.next_offset is None or local.next_offset < marker.next_offset):
            source, rows, rewrite = await self._from_changelog(partition, marker, end)
        elif self.changelog is not None:  # the local file is the state: the log must catch up with it
            behind = marker is None or marker.next_offset != local.next_offset
            self.changelog.track(partition, marker, end, force=behind)
        if rows.next_offset is None:  # never consumed (or the changelog is unusable): from the log's first offset
            source, rewrite = "source", True
            rows.next_offset = await self.beginning(partition)
        state = self.rec.install(partition, rows, store)
        if rewrite:  # the local file now holds exactly this state: later deltas apply to the same base
            full = self.rec.snapshot(partition, full=True)
            await asyncio.to_thread(full.write)
            full.restore()
        if source != "local" or (self.changelog is not None and self.changelog.wants_full(partition)):
            self.dirty.add(partition)
        self._restored(source, partition, state, time.perf_counter() - started)
        return source

    def _keep_warm(self, partition: int, marker: Marker | None, end: int) -> bool:
        """A partition revoked and given back in the same rebalance keeps the state in memory, when nobody
        wrote to its changelog since this replica's last flush."""
        state = self.warm.pop(partition, None)
        if state is None:
            return False
        unchanged = self.changelog is None or (marker is not None and self.changelog.wrote(marker)
                                               and marker.next_offset == state.next_offset)
        if not unchanged:
            if state.store is not None:
                state.store.close()
            return False
        self.rec.attach(partition, state)
        if self.changelog is not None:
            self.changelog.track(partition, marker, end, force=False)
        return True

    def _restored(self, source: str, partition: int, state: PartitionState, elapsed: float, how: str = "") -> None:
        metrics.restores.labels(source).inc()
        metrics.restore_seconds.labels(source).observe(elapsed)
        metrics.restored_offset.labels(str(partition)).set(state.next_offset)
        log.info("%s[%d]: restored from %s%s at offset %s, %d users, in %.2f s", self.topic, partition, source,
                 f" ({how})" if how else "", state.next_offset, len(state.users), elapsed)

    async def beginning(self, partition: int) -> int:
        consumer = self.consumer
        if consumer is None:
            return 0
        tp = TopicPartition(self.topic, partition)
        return (await consumer.beginning_offsets([tp]))[tp]

    async def _from_changelog(self, partition: int, marker: Marker, end: int) -> tuple[str, Rows, bool]:
        try:
            restored = await self.changelog.load(partition, marker, end)
        except ChangelogError as exc:
            metrics.changelog_rejected.inc()
            log.error("%s[%d]: the changelog cannot be restored (%s); rebuilding the partition from %s", self.topic,
                      partition, exc, self.topic)
            if self.dead_letter is not None and exc.record is not None:
                await self.dead_letter(exc.record, str(exc))
            self.changelog.track(partition, None, end, force=True)
            return "source", Rows(), True
        if restored.rows is None:
            self.changelog.track(partition, None, end, force=True)
            return "source", Rows(), True
        return "changelog", restored.rows, True

    async def revoked(self, tps: list[TopicPartition]) -> None:
        # the group coordinator runs beside the batch handler: let the batch in hand finish (and move the
        # positions) before storing and dropping the partitions it touches
        partitions = [tp.partition for tp in tps]
        self.leaving.update(partitions)
        for partition in partitions:
            self.serving.discard(partition)
            if self.claims is not None:
                await self.claims.release(partition, self.generation)
        try:
            await asyncio.wait_for(self.between_batches.wait(), BATCH_END_WAIT_S)
        except TimeoutError:  # a batch that failed half way (its dead letter unwritable) never ends
            log.warning("batch still open after %.0f s; storing partitions %s without it", BATCH_END_WAIT_S,
                        partitions)
        await self.flush(partitions)  # the next owner resumes where this one stopped
        for partition in partitions:
            state = self.rec.detach(partition)
            if state is not None:  # kept until the rebalance ends: it may come back unchanged
                self.warm[partition] = state
            if self.changelog is not None:
                self.changelog.forget(partition)
            try:  # its new owner reports it now
                metrics.lag.remove(self.topic, self.group, str(partition))
            except KeyError:
                pass

    def close(self) -> None:
        """Drop every partition held or kept (their local files closed); the state is stored already."""
        for state in self.warm.values():
            if state.store is not None:
                state.store.close()
        self.warm.clear()
        self.rec.close()

    # ---------------------------------------------------------------- flush

    async def flush_when_idle(self) -> None:
        """Background task: store what a quiet stream left unstored."""
        while True:
            await asyncio.sleep(self.flush_interval_s or 0.25)
            if self.dirty and not self.in_batch:
                await self.flush()

    def _snapshot(self, partitions: list[int] | None) -> list[Snapshot]:
        """The snapshots of one flush (``partitions``: of those only, all now). A full snapshot of a partition holds
        the event loop for its whole state (12-23 ms a partition at 50,000 events over six), so a flush of the
        partitions that are dirty takes at most one that is only due (its deltas outweigh its last one); the others
        write a delta and take theirs at a later flush. One that must be full (nothing known of its changelog, a
        video's vector changed) or a flush of named partitions (they move, or the service stops) is never put off."""
        snaps, took_full = [], False
        self.dirty |= {p for p, st in self.rec.partitions.items() if st.full_requested}  # stored, even if idle
        for partition in sorted(partitions if partitions is not None else self.dirty):
            if partition not in self.dirty:
                continue
            self.dirty.discard(partition)
            if self.rec.position(partition) is not None:  # else revoked since: its new owner has it
                log = self.changelog
                due = (log is not None and log.wants_full(partition)) or self.rec.wants_full(partition)
                must = partitions is not None or self.rec.partitions[partition].full_requested or \
                    (log is not None and log.must_full(partition))
                full = due and (must or not took_full)
                took_full |= full
                snaps.append(self.rec.snapshot(partition, full=full))
        self.flushed_at = time.monotonic()
        return snaps

    def _writing(self) -> bool:
        return self.writer is not None and not self.writer.done()

    def flush_soon(self) -> None:
        """Snapshot now, between batches (consistent), and write while the consumer goes on fetching and
        applying; skipped while the previous write runs (its successor takes both)."""
        if self._writing():
            return
        snaps = self._snapshot(None)
        if snaps:
            self._start_write(snaps)

    async def flush(self, partitions: list[int] | None = None) -> None:
        """Store what is unstored now and wait for it (before partitions move, at shutdown)."""
        while self._writing():
            await asyncio.wait([self.writer])
        snaps = self._snapshot(partitions)
        if snaps:
            await self._start_write(snaps)

    def _start_write(self, snaps: list[Snapshot]) -> asyncio.Task:
        self.writer = asyncio.create_task(self._write(snaps, self.generation))
        self.writer.add_done_callback(_report_write)
        return self.writer

    async def _write(self, snaps: list[Snapshot], generation: int) -> None:
        """Changelog first, then the local file: the local file is never ahead of a changelog write that failed."""
        for i, snap in enumerate(snaps):
            try:
                encoded = None
                if self.changelog is not None:
                    encoded = await self.changelog.write(snap.partition, snap.rows, snap.full, generation, snap.delta)
                    metrics.changelog_flushes.labels("snapshot" if snap.full else "delta").inc()
                await asyncio.to_thread(snap.write, encoded)
            except BaseException:
                for failed in snaps[i:]:  # stored nowhere, or only in the changelog: store them next time
                    failed.restore()
                    self.dirty.add(failed.partition)
                raise


def _report_write(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:  # changes stay pending for the next flush
        metrics.state_write_failures.inc()
        log.error("storing recommender state failed; retrying at the next flush", exc_info=task.exception())


class Rebalance(ConsumerRebalanceListener):
    """aiokafka's rebalance callbacks, handed to :class:`Partitions`."""

    def __init__(self, partitions: Partitions) -> None:
        self.partitions = partitions

    async def on_partitions_revoked(self, revoked) -> None:
        await self.partitions.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.partitions.assigned(list(assigned))
