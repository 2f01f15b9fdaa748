"""The replay's baselines score every item from arrays they keep beside their models: those arrays must say
what the models say."""

import numpy as np
import pytest

from evaluation.baselines import ItemKNNBaseline, RiverMFBaseline, fit


def small_log(n: int = 400, users: int = 12, items: int = 30, seed: int = 5):
    rng = np.random.default_rng(seed)
    return [(f"u{rng.integers(users)}", f"i{rng.integers(items)}", float(rng.choice([1.0, 1.0, 0.0])), float(t))
            for t in range(n)]


def test_river_mf_scores_every_item_as_the_model_predicts_it():
    mf = RiverMFBaseline(n_factors=4)
    for user, item, weight, ts in small_log():
        mf.update(user, item, weight, ts)
    for user in ("u0", "u3", "someone new"):
        expected = [mf.model.predict_one(user, item) for item in mf.items]
        assert mf.scores(user, 0.0).tolist() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_item_knn_damps_co_visits_by_each_items_positives():
    knn = ItemKNNBaseline(history=5, alpha=1.0, decay=1.0)
    for user, item, weight, ts in [("a", "x", 1.0, 0), ("a", "y", 1.0, 1), ("b", "x", 1.0, 2), ("b", "z", 1.0, 3),
                                   ("c", "y", 0.0, 4), ("c", "x", 1.0, 5)]:
        knn.update(user, item, weight, ts)
    scores = dict(zip(knn.items, knn.scores("c", 0.0).tolist()))
    # c's positive is x; x co-visited once with y and once with z, each liked once; x itself: 3 positives, no self pair
    assert scores == {"x": 0.0, "y": 1.0, "z": 1.0}


def test_fit_grows_by_doubling_and_keeps_what_was_there():
    a = np.arange(3, dtype=float)
    assert fit(a, 3) is a
    grown = fit(a, 4, fill=-1.0)
    assert len(grown) == 64 and grown[:3].tolist() == [0.0, 1.0, 2.0] and set(grown[3:].tolist()) == {-1.0}
    assert len(fit(np.zeros((100, 2)), 101)) == 200
