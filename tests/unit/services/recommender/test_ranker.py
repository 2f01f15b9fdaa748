"""The online ranker, the scorer's features and the versioned state file."""

import sqlite3

import numpy as np
import pytest

from services.recommender.core.ranker import Ranker, blend
from services.recommender.core.stats import Popularity
from services.recommender.state_store import (
    SCHEMA_VERSION,
    PartitionStore,
    StateSchemaError,
)


def test_pairwise_steps_raise_the_feature_that_separates_positives():
    prior = np.zeros(3)
    ranker = Ranker(prior.copy())
    rng = np.random.default_rng(0)
    for _ in range(200):  # positives are high on feature 1; features 0 and 2 are noise
        pos = rng.normal(size=3) + np.array([0, 1.0, 0])
        ranker.learn(pos, rng.normal(size=(5, 3)), prior, rate=0.05, l2=1e-3)
    assert ranker.updates == 200
    assert ranker.weights[1] > 5 * max(abs(ranker.weights[0]), abs(ranker.weights[2]))


def test_blend_weights_partitions_by_updates_and_falls_back_to_the_prior():
    prior = np.array([1.0, 1.0])
    assert np.array_equal(blend([Ranker(np.zeros(2))], prior), prior)  # nothing learned yet
    mixed = blend([Ranker(np.array([2.0, 0.0]), 3), Ranker(np.array([0.0, 4.0]), 1)], prior)
    assert mixed == pytest.approx([1.5, 1.0])
    restored = Ranker.from_bytes(Ranker(np.array([0.25, -2.0]), 7).to_bytes(), 7)
    assert restored.weights.tolist() == [0.25, -2.0] and restored.updates == 7


def test_popularity_keeps_an_all_time_total_beside_the_decayed_score():
    pop = Popularity(half_life_s=10)
    pop.add("a", 1.0, 0)
    pop.add("a", 2.0, 100)
    assert pop.totals_of(["a", "nope"]).tolist() == [3.0, 0.0]
    assert pop.score("a", 100) == pytest.approx(2.0, abs=1e-2)
    merged = Popularity(half_life_s=10)
    merged.merge(pop)
    assert merged.totals["a"] == 3.0


def test_state_file_of_another_schema_version_is_refused_with_a_way_out(tmp_path):
    PartitionStore(tmp_path, "watch.events", 0).close()
    db = sqlite3.connect(tmp_path / "watch.events-0.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
    db.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StateSchemaError, match="schema version 1.*rebuilt from watch.events"):
        PartitionStore(tmp_path, "watch.events", 0)


def test_top_score_is_the_largest_decayed_score_at_any_time():
    pop = Popularity(half_life_s=3600)
    assert pop.top_score(0.0) == 0.0
    rng = np.random.default_rng(3)
    for t in sorted(rng.uniform(0, 20000, 200)):
        pop.add(f"v{rng.integers(0, 30)}", float(rng.uniform(0.1, 2.0)), float(t))
    pop.add("late", 1.0, 5000.0)  # an event older than the clock
    for now in (20000.0, 30000.0, 90000.0):
        assert pop.top_score(now) == pytest.approx(max(pop.scores_at(list(pop.scores), now)))
    restored = Popularity(half_life_s=3600)
    for video, (score, at) in pop.scores.items():
        restored.load(video, score, at, pop.totals[video])
    assert restored.top_score(30000.0) == pytest.approx(pop.top_score(30000.0))
    assert restored.peak_total == max(pop.totals.values())
