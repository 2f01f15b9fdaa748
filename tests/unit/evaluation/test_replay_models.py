"""The candidate model classes of ``benchmarks.replay_models``, on logs small enough to reason about."""

from benchmarks.replay_models import EASE, SessionKNN, TransitionModel, candidates
from evaluation.replay import BaselineSystem, Interaction, evaluate, shared_tiebreak


def feed(model, rows):
    for t, (user, item) in enumerate(rows):
        model.update(user, item, 1.0, float(t))


def best(model, user, exclude=()):
    ranked = BaselineSystem(model).rank(user, 3, set(exclude), 0.0)
    return ranked[0]


def test_transitions_follow_the_direction_users_watch_in():
    model = TransitionModel(name="t")
    feed(model, [("u1", "a"), ("u1", "b"), ("u2", "c"), ("u2", "a"), ("u3", "a")])
    assert best(model, "u3", {"a"}) == "b"  # a was followed by b, and only preceded by c


def test_session_knn_recommends_what_similar_users_watched():
    model = SessionKNN()
    feed(model, [("u1", "a"), ("u1", "b"), ("u1", "x"), ("u2", "c"), ("u2", "y"), ("u3", "a"), ("u3", "b")])
    assert best(model, "u3", {"a", "b"}) == "x"


def test_ease_learns_item_to_item_weights_when_it_refits():
    model = EASE(lam=1.0, every=6)
    feed(model, [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "c"), ("u3", "d"), ("u4", "a")])
    assert model.b is not None and model.b[0, 0] == 0.0
    assert best(model, "u4", {"a"}) == "b"


def test_evaluate_compares_any_named_system_with_the_rest():
    log = [Interaction(u, i, float(t), 1.0) for t, (u, i) in enumerate(
        [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "b"), ("u4", "a"), ("u4", "b")])]
    systems = [BaselineSystem(m) for m in candidates()]
    result = evaluate(log, systems, shared_tiebreak(log, {}), progress=False, ours="item_knn")
    assert result["scored"] == 3 and set(result["systems"]) == {s.name for s in systems}
    assert result["systems"]["item_knn"]["ndcg@10"] > 0.5  # u2-u4 watch b after a, and b is the only other item
    assert result["ratio"]["best_baseline"] != "item_knn"
