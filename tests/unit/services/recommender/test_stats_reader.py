"""The statistics reader (``stats_reader.py``) takes a replica's own flushes as it wrote them instead of decoding
its records again: the same statistics as a reader that decodes every record."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from services.recommender.changelog import MARKER, Assembler, Marker, WrittenFlushes
from services.recommender.core.global_stats import GlobalStats
from services.recommender.stats_reader import apply_batch
from tests.unit.services.recommender.changelog_fakes import MemoryChangelog
from tests.unit.services.recommender.test_partitions import P, events, serving


def view(stats: GlobalStats) -> tuple:
    rows = lambda table: {a: dict(r) for a, r in table.counts.items()}
    return (dict(stats.popularity.scores), dict(stats.popularity.hot), rows(stats.covisit), rows(stats.transitions),
            rows(stats.trends), {p: r.to_bytes() for p, r in stats.rankers.items()})


def wrote(tmp_path, catalogue, flushes: int = 5, each: int = 12):
    """A replica's log of a few flushes (deltas and full snapshots), and what it holds of its own flushes."""
    log = MemoryChangelog(snapshot_min_entries=40)

    async def run():
        replica = await serving(tmp_path / "a", catalogue, log, "a", each)
        for i in range(1, flushes):
            await replica.consume(events(each, start=i * each), i * each)
        return replica

    replica = asyncio.run(run())
    return log.logs[P], replica.parts.changelog.written, replica.rec.prior


def test_own_flushes_are_taken_as_written_and_rank_the_same(tmp_path, catalogue):
    records, written, prior = wrote(tmp_path, catalogue)
    flushes = sum(r.key == MARKER for r in records)
    snapshots = sum(r.key == MARKER and b'"snapshot":true' in r.value for r in records)
    assert flushes > snapshots > 1 and len(written.held) == flushes
    decoded = GlobalStats(3600.0, prior)
    assert apply_batch(records, {}, decoded) == flushes
    # the data records garbled: a reader that decoded them would reject every flush
    garbled = [r if r.key == MARKER else replace(r, value=b"\xff not a row") for r in records]
    own = GlobalStats(3600.0, prior)
    assert apply_batch(garbled, {}, own, written) == flushes
    assert view(own) == view(decoded) and view(own)[2], "the same statistics, co-visitation included"
    assert not written.held and written.entries == 0, "each flush is taken once"


def test_own_snapshots_after_own_flushes_are_taken_as_their_deltas(tmp_path, catalogue):
    records, written, prior = wrote(tmp_path, catalogue)
    kinds = {True: 0, False: 0}
    assembler = Assembler(users=False, written=written)
    for record in records:
        done = assembler.feed(record)
        if done is not None:
            kinds[done[0].snapshot] += 1
    snapshots = sum(r.key == MARKER and b'"snapshot":true' in r.value for r in records)
    # the first flush has no flush before it; every later snapshot followed one this reader applied
    assert kinds[True] == 1 < snapshots and kinds[False] == sum(r.key == MARKER for r in records) - 1
    # a reader that starts at a later snapshot (its base) gets that snapshot whole
    records, written, _ = wrote(tmp_path / "again", catalogue)
    last = max(i for i, r in enumerate(records) if r.key == MARKER and b'"snapshot":true' in r.value)
    late = Assembler(users=False, written=written)
    done = [late.feed(r) for r in records[Marker.model_validate_json(records[last].value).base:]]
    assert [d[0].snapshot for d in done if d is not None][0] is True


def test_flushes_no_longer_held_are_decoded(tmp_path, catalogue):
    records, written, prior = wrote(tmp_path, catalogue)
    few = WrittenFlushes(max_entries=1)  # keeps only the latest flush
    for flush, held in written.held.items():
        few.keep(flush, held.rows, held.delta, held.after)
    assert len(few.held) == 1
    decoded, own = GlobalStats(3600.0, prior), GlobalStats(3600.0, prior)
    assert apply_batch(records, {}, decoded) == apply_batch(records, {}, own, few) > 2
    assert view(own) == view(decoded) and not few.held


def test_a_rejected_flush_makes_the_next_snapshot_count_whole(tmp_path, catalogue):
    records, written, prior = wrote(tmp_path, catalogue, flushes=8)
    markers = [i for i, r in enumerate(records) if r.key == MARKER]
    snapshot = [b'"snapshot":true' in records[i].value for i in markers]
    # a delta whose next flush is a delta and which a later snapshot follows: one of its records goes missing
    lost = next(k for k in range(1, len(markers) - 2)
                if not snapshot[k] and not snapshot[k + 1] and any(snapshot[k + 2:]))
    gone = markers[lost] - 1
    decoded, own = GlobalStats(3600.0, prior), GlobalStats(3600.0, prior)
    apply_batch(records, {}, decoded)
    assemblers: dict = {}
    assert apply_batch(records[:gone] + records[gone + 1:], assemblers, own, written) == len(markers) - 1
    assert view(own) == view(decoded), "the snapshot after the rejected flush was read whole, and repaired it"
    assert not assemblers[P].gap


def test_a_flush_merges_in_steps_to_the_same_statistics(monkeypatch, tmp_path, catalogue):
    """The reader lets the event loop run between steps of a flush's merge: with steps of 3 rows, every flush of
    the log pauses at least once, and the statistics end the same as merging each flush at once."""
    import services.recommender.core.global_stats as global_stats
    from services.recommender.stats_reader import _fold

    records, _, prior = wrote(tmp_path, catalogue)
    whole = GlobalStats(3600.0, prior)
    flushes = apply_batch(records, {}, whole)
    monkeypatch.setattr(global_stats, "STEP", 3)
    stepped = GlobalStats(3600.0, prior)
    marks = list(_fold(records, {}, stepped, None))
    assert sum(marks) == flushes and marks.count(0) >= flushes
    assert view(stepped) == view(whole)


def test_merging_popularity_entries_is_adding_them_in_turn():
    """``Popularity.replace`` (the reader's per-video merge) gives what ``add`` of each entry gives, bit for bit,
    with entries older and newer than the ones before them, and the peaks it raises on the way."""
    import numpy as np

    from services.recommender.core.stats import Popularity

    rng = np.random.default_rng(3)
    merged, added = Popularity(3600.0, 600.0), Popularity(3600.0, 600.0)
    for video in range(200):
        entries = [(float(rng.exponential(5)), float(rng.uniform(0, 10_000)), float(rng.integers(1, 9)),
                    float(rng.exponential(2))) for _ in range(int(rng.integers(1, 6)))]
        merged.replace(f"v{video}", entries)
        for score, at, total, hot in entries:
            added.add(f"v{video}", score, at, total, hot)
    assert merged.scores == added.scores and merged.hot == added.hot and merged.totals == added.totals
    assert (merged._peak_key, merged._hot_peak_key, merged.peak_total, merged.now) == \
        (added._peak_key, added._hot_peak_key, added.peak_total, added.now)
    merged.replace("v0", [])
    assert "v0" not in merged.scores and "v0" not in merged.totals


def test_a_partitions_ranker_replaced_by_one_of_another_build_stops_ranking():
    """A full snapshot whose ranker has another feature count drops the partition's ranker: the blended weights
    a feed cached before are recomputed without it (they were left stale)."""
    import numpy as np

    from services.recommender.rows import Rows

    stats = GlobalStats(3600.0, np.zeros(2))
    stats.apply(0, Rows(ranker=(np.ones(2).tobytes(), 5)))
    assert stats.weights().tolist() != [0.0, 0.0]  # cached with the partition's ranker
    stats.apply(0, Rows(ranker=(np.ones(3).tobytes(), 5)), full=True)
    assert stats.rankers == {} and stats.weights().tolist() == [0.0, 0.0]
