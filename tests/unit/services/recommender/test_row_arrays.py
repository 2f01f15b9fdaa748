"""Votes summed from rows read as arrays (``row_arrays.py``) equal, to the bit and in order, the dictionary loop
they replace, while the rows change under them: pairs added, rows trimmed, partitions merged, flushes patched in."""

from __future__ import annotations

import random

import numpy as np
import pytest

from services.recommender.core.features import FEATURES, LAST_FEW, POP_DAMPING, RECENCY, RECENT, covisit_votes
from services.recommender.core.feed import FeedContext
from services.recommender.core.global_stats import GlobalStats
from services.recommender.core.row_arrays import CODES, Codes, RowArrays, by_space, by_unique, summed
from services.recommender.core.stats import CoVisitation, Popularity
from services.recommender.core.user_state import UserState
from services.recommender.rows import Rows


def loop_votes(recent: list[str], counts: dict, pop: Popularity) -> dict[int, dict[str, float]]:
    """The votes as the dictionary loop computed them before rows were read as arrays."""
    raw: dict[str, float] = {}
    windows: dict[int, dict[str, float]] = {}
    for age, item in enumerate(reversed(recent[-RECENT:])):
        if age == LAST_FEW:
            windows[LAST_FEW] = dict(raw)
        for other, count in counts.get(item, {}).items():
            raw[other] = raw.get(other, 0.0) + RECENCY ** age * count
    windows.setdefault(LAST_FEW, dict(raw))
    windows[RECENT] = raw
    for window, votes in windows.items():
        if votes:
            damp = np.maximum(pop.totals_of(list(votes)), 1.0) ** POP_DAMPING
            damped = np.array(list(votes.values())) / damp
            windows[window] = dict(zip(votes, (damped / damped.max()).tolist()))
    return windows


def votes_now(recent: list[str], cov: CoVisitation, pop: Popularity) -> dict[int, dict[str, float]]:
    ctx = FeedContext("u", UserState(recent_positive=list(recent)), 10, 0.0, None, pop, cov, np.zeros(len(FEATURES)))
    return {window: covisit_votes(ctx, window) for window in (LAST_FEW, RECENT)}


def same(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]]) -> bool:
    """Equal keys in equal order with equal values (==, not approx)."""
    return all(list(a[w].items()) == list(b[w].items()) for w in (LAST_FEW, RECENT))


@pytest.mark.parametrize("videos", [12, 400])
def test_votes_from_arrays_equal_the_loop_while_rows_grow_trim_and_merge(videos):
    rng = random.Random(videos)
    names = [f"vid{i}" for i in range(videos)]
    cov, pop, other = CoVisitation(max_neighbours=6), Popularity(3600), CoVisitation(max_neighbours=6)
    history: list[str] = []
    checked = 0
    for step in range(600):
        video = rng.choice(names)
        weight = rng.choice([1.0, 0.5, 3.0])
        cov.add(video, history[-8:], weight)
        pop.add(video, weight, float(step))
        history.append(video)
        if step % 97 == 0:  # another partition's rows merged in (rows past the cap, not trimmed)
            other.add(rng.choice(names), rng.sample(names, 5))
            cov.merge(other)
        if step % 7 == 0:
            recent = history[-rng.randint(1, 25):]
            assert same(votes_now(recent, cov, pop), loop_votes(recent, cov.counts, pop))
            checked += 1
    assert checked > 50


def test_a_merged_view_patched_by_flushes_votes_as_the_loop_does():
    stats = GlobalStats(3600, np.zeros(len(FEATURES)))
    stats.apply(0, Rows(covisit=[("a", {"b": 2.0, "c": 1.0}), ("b", {"a": 2.0})], popularity=[("b", 1, 0, 4, 0)]))
    recent = ["a", "b"]
    before = votes_now(recent, stats.covisit, stats.popularity)  # the rows are now kept as arrays
    assert same(before, loop_votes(recent, stats.covisit.counts, stats.popularity))
    # a patch that drops one pair and adds another of the same weight: the row's size and sum stay the same
    stats.apply(0, Rows(covisit=[("a", {"c": 0.0, "d": 1.0})], popularity=[("d", 1, 0, 9, 0)]))
    after = votes_now(recent, stats.covisit, stats.popularity)
    assert "c" not in after[RECENT] and "d" in after[RECENT]
    assert same(after, loop_votes(recent, stats.covisit.counts, stats.popularity))


def test_summed_adds_in_order_and_cuts_where_asked():
    codes = Codes()
    a, b = codes.encode(["x", "y", "z"]), codes.encode(["z", "w"])
    assert codes.encode(["w", "x"]).tolist() == [3, 0] and codes.names(np.array([2, 0])) == ["z", "x"]
    order, sums, early, n_early = summed([(CODES.encode(["x", "y", "z"]), np.array([0.1, 1.0, 2.0])),
                                          (CODES.encode(["z", "w"]), np.array([0.2, 5.0]))], cut=3)
    assert CODES.names(order) == ["x", "y", "z", "w"] and n_early == 3
    assert sums.tolist() == [0.1, 1.0, 2.0 + 0.2, 5.0] and early[:n_early].tolist() == [0.1, 1.0, 2.0]
    assert len(a) == 3 and len(b) == 2
    assert [len(x) for x in summed([])[:3]] == [0, 0, 0] and summed([])[3] == 0


def test_both_ways_of_binning_give_the_sums_of_the_loop():
    rng = np.random.default_rng(3)
    CODES.encode(f"bin{i}" for i in range(50))
    codes = rng.integers(0, len(CODES.of), 300)
    weights = rng.random(300) * 10
    loop: dict[int, float] = {}
    for c, w in zip(codes.tolist(), weights.tolist()):
        loop[c] = loop.get(c, 0.0) + w
    for way in (by_space, by_unique):
        order, first, inverse, size = way(codes)
        sums = np.bincount(inverse, weights, size)[order]
        assert codes[first[order]].tolist() == list(loop) and sums.tolist() == list(loop.values())


def test_kept_rows_are_read_again_once_changed_and_stay_bounded():
    cov = CoVisitation()
    cov.add("a", ["p"])
    codes, weights = cov.row_arrays("a")
    assert CODES.names(codes) == ["p"] and weights.tolist() == [1.0] and "a" in cov.arrays.kept
    cov.add("p", ["a"], 2.0)  # row a's pair with p grows (same size): a is forgotten, read again
    codes, weights = cov.row_arrays("a")
    assert CODES.names(codes) == ["p"] and weights.tolist() == [3.0]
    kept = RowArrays(limit=2)
    kept.get("b", {"p": 1.0})
    kept.get("c", {"p": 1.0})
    kept.get("d", {"p": 1.0})  # a third row: the two kept are dropped first
    assert list(kept.kept) == ["d"]
    grown = {"p": 1.0}
    kept.get("e", grown)
    grown["x"] = 3.0  # changed without a word: a row of another size is read again
    assert CODES.names(kept.get("e", grown)[0]) == ["p", "x"]
    assert Codes().encode(["n", "m", "n"]).tolist() == [0, 1, 0]


def test_row_arrays_of_an_empty_row_is_none():
    cov = CoVisitation()
    assert cov.row_arrays("nothing") is None
