"""The partition protocol (``partitions.py``) against a fake consumer and an in-memory changelog in the real
record format: restore sources, exact state across moves, incomplete and fenced-off flushes, corrupt
records, snapshot cadence, claims."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise

import numpy as np
import pytest
from aiokafka import TopicPartition

from services.recommender import metrics
from services.recommender.changelog import FLUSH_HEADER, MARKER, Marker, encode_user
from services.recommender.core.global_stats import GlobalStats
from services.recommender.engine import Recommender
from services.recommender.partitions import Partitions
from services.recommender.stats_reader import apply_batch
from shared.events import WatchEvent
from shared.ownership import partition_for
from shared.settings import RecommenderSettings
from tests.unit.services.recommender.changelog_fakes import (
    FakeConsumer,
    MemoryChangelog,
    MemoryClaims,
    Record,
)

TOPIC = "watch.events"
P = 0
TP = TopicPartition(TOPIC, P)


def events(n: int, users: int = 5, start: int = 0) -> list[WatchEvent]:
    actions = ("complete", "like", "skip", "play", "share")
    return [WatchEvent(event_id=f"e{i}", user_id=f"u{i % users}", video_id=f"v{(i * 7) % 12}",
                       action=actions[i % len(actions)], watch_ms=5000, duration_ms=10000, ts=1.7e9 + i)
            for i in range(start, start + n)]


class Replica:
    """One replica's engine and protocol, with its own local state folder (its own disk)."""

    def __init__(self, folder, catalogue, log: MemoryChangelog, name: str, generation: int = 1) -> None:
        settings = RecommenderSettings(state_dir=folder, learn_fraction=1.0)
        self.rec = Recommender(settings, catalogue, TOPIC, shared_stats=True)
        self.consumer = FakeConsumer(generation, {TP})
        self.claims = MemoryClaims()
        self.letters: list = []

        async def dead_letter(record, why):
            self.letters.append((record.offset, why))

        self.parts = Partitions(self.rec, TOPIC, 1, flush_interval_s=0, changelog=log.view(name), claims=self.claims,
                                dead_letter=dead_letter, consumer=lambda: self.consumer)

    async def consume(self, evs: list[WatchEvent], first_offset: int) -> None:
        """Events at consecutive offsets, each admitted, applied and settled as the consumer does."""
        for i, event in enumerate(evs):
            record = Record(TOPIC, P, first_offset + i, event.user_id.encode(), None)
            if await self.parts.admit(record):
                self.rec.apply(event, P)
                self.parts.settled(record)
        await self.parts.after_batch([])
        await self.parts.flush()

    def state(self) -> tuple:
        st = self.rec.partitions[P]
        users = {u: (s.events, s.seen, s.event_ids, None if s.long is None else s.long.tobytes()) for u, s in st.users.items()}
        return (users, dict(st.popularity.scores), {a: dict(r) for a, r in st.covisit.counts.items()},
                st.ranker.to_bytes(), st.ranker.updates, st.next_offset)


async def serving(folder, catalogue, log: MemoryChangelog, name: str, n: int, generation: int = 1) -> Replica:
    """A replica that was assigned the partition and consumed its first ``n`` events."""
    replica = Replica(folder, catalogue, log, name, generation)
    await replica.parts.assigned([TP])
    await replica.consume(events(n), 0)
    return replica


def restores(source: str) -> float:
    return metrics.restores.labels(source)._value.get()


def test_state_moves_to_another_machine_exactly_through_the_changelog(tmp_path, catalogue):
    log = MemoryChangelog()
    evs = events(60)

    async def run():
        a = Replica(tmp_path / "a", catalogue, log, "a")
        before = restores("source")
        await a.parts.assigned([TP])
        assert restores("source") == before + 1 and a.consumer.seeks == [(P, 0)]
        await a.consume(evs[:40], 0)
        assert a.claims.sent == [(P, 1, True)]
        await a.parts.revoked([TP])
        assert a.claims.sent[-1] == (P, 1, False) and P not in a.rec.partitions

        b = Replica(tmp_path / "b", catalogue, log, "b", generation=2)  # another disk: nothing local
        before = restores("changelog")
        await b.parts.assigned([TP])
        assert restores("changelog") == before + 1
        assert b.consumer.seeks == [(P, 40)], "resumes exactly where the last flush stopped"
        await b.consume(evs[40:], 40)

        clean = Replica(tmp_path / "clean", catalogue, clean_log, "clean")
        await clean.parts.assigned([TP])
        await clean.consume(evs, 0)
        assert b.state() == clean.state()
        assert b.rec.partitions[P].ranker.updates > 0

    clean_log = MemoryChangelog()
    asyncio.run(run())
    # what every replica ranks with, read from either log (other flushes, the same state), is the same
    views = []
    for records in (log.logs[P], clean_log.logs[P]):
        stats = GlobalStats(3600.0, np.ones(3))
        assert apply_batch(records, {}, stats) > 0
        views.append((dict(stats.popularity.scores), {a: dict(r) for a, r in stats.covisit.counts.items()},
                      {p: r.updates for p, r in stats.rankers.items()}))
    assert views[0] == views[1] and views[0][0]


def test_local_file_serves_when_at_least_as_new_as_the_changelog(tmp_path, catalogue):
    log = MemoryChangelog()

    async def run():
        a = await serving(tmp_path / "a", catalogue, log, "a", 20)
        await a.parts.revoked([TP])
        again = Replica(tmp_path / "a", catalogue, log, "a2", generation=2)  # the same disk
        before = restores("local")
        await again.parts.assigned([TP])
        assert restores("local") == before + 1 and again.consumer.seeks == [(P, 20)]
        # another replica moves the changelog ahead: the same disk is now stale and is not used
        b = Replica(tmp_path / "b", catalogue, log, "b", generation=3)
        await again.parts.revoked([TP])
        await b.parts.assigned([TP])
        await b.consume(events(10, start=20), 20)
        await b.parts.revoked([TP])
        third = Replica(tmp_path / "a", catalogue, log, "a3", generation=4)
        before = restores("changelog")
        await third.parts.assigned([TP])
        assert restores("changelog") == before + 1 and third.consumer.seeks == [(P, 30)]

    asyncio.run(run())


def test_a_flush_without_its_marker_or_from_a_fenced_off_owner_is_never_applied(tmp_path, catalogue):
    log = MemoryChangelog()

    async def run():
        a = await serving(tmp_path / "a", catalogue, log, "a", 20, generation=5)
        await a.parts.revoked([TP])
        # a writer killed half way: records of a flush with no marker
        log.append(P, b"u/u0", encode_user("{}", None, None, None), ((FLUSH_HEADER, b"dead:1"),))
        # a zombie of an older generation finishes a flush after the group moved on
        log.append(P, b"p/v0", json.dumps([99.0, 1.7e9, 99.0]).encode(), ((FLUSH_HEADER, b"zombie:1"),))
        log.append(P, MARKER, Marker(flush="zombie:1", records=1, next_offset=999, snapshot=False, base=0,
                                     generation=4).model_dump_json().encode())
        b = Replica(tmp_path / "b", catalogue, log, "b", generation=6)
        await b.parts.assigned([TP])
        assert b.consumer.seeks == [(P, 20)]
        assert b.rec.partitions[P].popularity.scores.get("v0", (0,))[0] != 99.0

    asyncio.run(run())


def test_a_corrupt_changelog_record_is_dead_lettered_and_the_partition_rebuilt_from_the_source(tmp_path, catalogue):
    log = MemoryChangelog()

    async def run():
        a = await serving(tmp_path / "a", catalogue, log, "a", 20)
        await a.parts.revoked([TP])
        bad = log.logs[P][1]
        log.logs[P][1] = Record(bad.topic, P, bad.offset, bad.key, b"\xff not json", bad.headers)
        b = Replica(tmp_path / "b", catalogue, log, "b", generation=2)
        before, rejected = restores("source"), metrics.changelog_rejected._value.get()
        await b.parts.assigned([TP])
        assert restores("source") == before + 1 and metrics.changelog_rejected._value.get() == rejected + 1
        assert b.letters and b.letters[0][0] == 1 and "undecodable" in b.letters[0][1]
        assert b.consumer.seeks == [(P, 0)] and b.rec.partitions[P].users == {}, "nothing restored with a gap"
        # the rebuilt state goes to the changelog as a full snapshot: the next restore starts after the bad record
        await b.consume(events(20), 0)
        marker, _ = await log.last(P)
        assert marker.base > 1

    asyncio.run(run())


def test_full_snapshots_bound_what_a_restore_reads(tmp_path, catalogue):
    log = MemoryChangelog(snapshot_min_entries=250)  # a delta of 10 events is about 100 entries

    async def run():
        a = Replica(tmp_path / "a", catalogue, log, "a")
        await a.parts.assigned([TP])
        for start in range(0, 400, 10):
            await a.consume(events(10, start=start), start)
        markers = [Marker.model_validate_json(r.value) for r in log.logs[P] if r.key == MARKER]
        snapshots = [m for m in markers if m.snapshot]
        assert len(snapshots) >= 3, "deltas piling up past the snapshot's size trigger a new snapshot"
        kinds = "".join("S" if m.snapshot else "d" for m in markers)
        assert "SdS" not in kinds and "SS" not in kinds[1:], f"a snapshot after too few deltas: {kinds}"
        latest = markers[-1]
        biggest_delta = max(m.entries - prev.entries for prev, m in pairwise(markers) if not m.snapshot)
        assert latest.entries <= 2 * max(250, latest.snapshot_entries) + biggest_delta
        assert len(log.logs[P]) - latest.base <= latest.entries + len(markers)  # a record holds an entry at least

    asyncio.run(run())


def test_a_failed_changelog_write_stores_nothing_and_the_next_flush_stores_it(tmp_path, catalogue):
    log = MemoryChangelog()

    async def run():
        a = await serving(tmp_path / "a", catalogue, log, "a", 10)
        a.parts.flush_interval_s = 3600  # no flush after the batch: the one below is the first
        a.parts.flushed_at = 1e18
        a.parts.changelog.fail_next_write = True
        with pytest.raises(ConnectionError):
            await a.consume(events(10, start=10), 10)
        stored = a.rec.partitions[P].store.next_offset()
        assert stored == 10, "the local file is never ahead of the changelog"
        await a.parts.flush()
        assert a.rec.partitions[P].store.next_offset() == 20 and (await log.last(P))[0].next_offset == 20

    asyncio.run(run())


def test_records_off_the_position_are_skipped_and_the_consumer_sent_back(tmp_path, catalogue):
    async def run():
        a = Replica(tmp_path / "a", catalogue, MemoryChangelog(), "a")
        await a.parts.assigned([TP])
        await a.consume(events(5), 0)
        assert not await a.parts.admit(Record(TOPIC, P, 3, b"u", None))  # already in the state
        assert not await a.parts.admit(Record(TOPIC, P, 9, b"u", None))  # past it: seek back
        assert a.consumer.seeks[-1] == (P, 5)
        assert await a.parts.admit(Record(TOPIC, P, 5, b"u", None))

    asyncio.run(run())


def test_per_user_reads_are_served_only_for_restored_partitions(tmp_path, catalogue):
    async def run():
        a = Replica(tmp_path / "a", catalogue, MemoryChangelog(), "a")
        a.parts.source_partitions = 6
        mine = TopicPartition(TOPIC, partition_for("alice", 6))
        assert not a.parts.ready() and a.parts.serves("alice") == (False, mine.partition)
        await a.parts.assigned([mine])
        assert a.parts.ready() and a.parts.serves("alice")[0]
        await a.parts.revoked([mine])
        assert not a.parts.serves("alice")[0]

    asyncio.run(run())


def test_a_partition_given_back_unchanged_keeps_its_state_in_memory(tmp_path, catalogue):
    log = MemoryChangelog()

    async def run():
        a = await serving(tmp_path / "a", catalogue, log, "a", 20)
        kept = a.rec.partitions[P]
        await a.parts.revoked([TP])
        await a.parts.assigned([TP])  # the same rebalance gives it back: nobody wrote since
        assert a.rec.partitions[P] is kept and a.consumer.seeks[-1] == (P, 20)
        await a.parts.revoked([TP])
        b = Replica(tmp_path / "b", catalogue, log, "b", generation=2)  # it moves, and moves on
        await b.parts.assigned([TP])
        await b.consume(events(5, start=20), 20)
        await b.parts.revoked([TP])
        await a.parts.assigned([TP])  # back at a, whose memory is now stale: restored from the changelog
        assert a.rec.partitions[P] is not kept and a.rec.partitions[P].next_offset == 25
        await a.parts.assigned([])
        assert not a.parts.warm

    asyncio.run(run())


def test_a_record_of_a_partition_being_revoked_is_skipped_not_taken_back(tmp_path, catalogue):
    """aiokafka still lists a partition as assigned while its revocation runs, and a batch can run while the
    revocation awaits: a record of the partition then must not restore and claim it again."""
    log = MemoryChangelog()

    async def run():
        a = await serving(tmp_path / "a", catalogue, log, "a", 20)
        await a.parts.revoked([TP])
        assert TP in a.consumer.assignment() and a.rec.position(P) is None
        claims_before = list(a.claims.sent)
        assert not await a.parts.admit(Record(TOPIC, P, 20, b"u", None))
        assert a.rec.position(P) is None and not a.parts.restoring and not a.parts.serves("u0")[0]
        assert a.claims.sent == claims_before and a.claims.sent[-1] == (P, 1, False), "released, not claimed again"
        await a.parts.assigned([TP])  # the next assignment gives it back: taken again, where it was stored
        assert a.rec.position(P) == 20 and a.consumer.seeks[-1] == (P, 20)

    asyncio.run(run())


def test_a_flush_takes_at_most_one_full_snapshot_that_is_only_due_and_puts_the_others_off(tmp_path, catalogue):
    """Two partitions whose deltas outweigh their snapshots together: a flush writes one of them in full and a delta
    of the other, which takes its full snapshot at a later flush (each holds the event loop for its whole state).
    A partition's first flush must be full, and both are."""
    log = MemoryChangelog(snapshot_min_entries=250)
    tps = [TopicPartition(TOPIC, p) for p in (0, 1)]

    async def run():
        rec = Recommender(RecommenderSettings(state_dir=tmp_path / "a", learn_fraction=1.0), catalogue, TOPIC,
                          shared_stats=True)
        consumer = FakeConsumer(1, set(tps))

        async def dead_letter(record, why):
            raise AssertionError(why)

        parts = Partitions(rec, TOPIC, 2, flush_interval_s=3600, changelog=log.view("a"), claims=MemoryClaims(),
                           dead_letter=dead_letter, consumer=lambda: consumer)
        await parts.assigned(tps)
        fulls_per_flush = []
        for start in range(0, 600, 10):
            for partition in (0, 1):
                for i, event in enumerate(events(10, start=start)):
                    record = Record(TOPIC, partition, start + i, event.user_id.encode(), None)
                    assert await parts.admit(record)
                    rec.apply(event, partition)
                    parts.settled(record)
            before = snapshots()
            await parts.flush()
            fulls_per_flush.append(snapshots() - before)
        return fulls_per_flush

    def snapshots() -> int:
        return sum(Marker.model_validate_json(r.value).snapshot for p in (0, 1) for r in log.logs.get(p, [])
                   if r.key == MARKER)

    fulls = asyncio.run(run())
    assert fulls[0] == 2, "each partition's first flush is a full snapshot, in the same flush"
    assert max(fulls[1:]) == 1, f"never two only-due full snapshots in one flush: {fulls}"
    assert sum(fulls[1:]) >= 4, "both partitions still take theirs as their deltas outweigh them"
