"""`clipstream eval replay` end to end on the synthetic log and the MovieLens-style fixture."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.replay import Interaction, bootstrap_ratio, read_interactions

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "movielens_style"
SYSTEMS = {"clipstream", "popularity", "decayed_popularity", "item_knn", "sequential_rules", "session_knn", "river_mf"}


def replay(interactions: Path, items: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "cli.main", "eval", "replay", "--interactions", str(interactions),
                          "--items", str(items), "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_clipstream_beats_every_baseline_on_the_synthetic_log(tmp_path):
    subprocess.run([sys.executable, "-m", "cli.main", "interactions", "--out", str(tmp_path), "--users", "60",
                    "--items", "150", "--events", "2000", "--seed", "3"], check=True, capture_output=True)
    result = replay(tmp_path / "interactions.csv", tmp_path / "items.csv")
    systems = result["systems"]
    assert set(systems) == SYSTEMS
    for name, m in systems.items():
        assert set(m) == {"ndcg@10", "recall@20", "coverage", "events_per_s"}
        assert 0 <= m["ndcg@10"] <= m["recall@20"] <= 1 and 0 < m["coverage"] <= 1
    ours = systems["clipstream"]["ndcg@10"]
    assert all(ours > m["ndcg@10"] for name, m in systems.items() if name != "clipstream")
    assert result["ratio"]["ci95"][0] > 1.0, result["ratio"]


def test_movielens_style_fixture_runs_end_to_end():
    result = replay(FIXTURE / "interactions.csv", FIXTURE / "items.csv")
    assert set(result["systems"]) == SYSTEMS and result["scored"] > 500
    assert result["ratio"]["best_baseline"] in SYSTEMS - {"clipstream"}
    lo, hi = result["ratio"]["ci95"]
    assert lo <= result["ratio"]["ratio"] <= hi


def test_ties_in_time_keep_file_order_and_weights_default_to_one(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,b,5\nu1,a,5\nu2,c,2026-11-25T10:00:00Z\nu0,z,1\n")
    rows = read_interactions(path)
    assert [r.item for r in rows] == ["z", "b", "a", "c"] and all(r.weight == 1.0 for r in rows)


def test_bootstrap_interval_brackets_the_ratio():
    ndcg = {"clipstream": {f"u{i}": [0.5, 0.3] for i in range(30)}, "pop": {f"u{i}": [0.25, 0.15] for i in range(30)}}
    r = bootstrap_ratio(ndcg, seed=0)
    assert r["best_baseline"] == "pop" and r["ratio"] == pytest.approx(2.0) and r["ci95"] == [2.0, 2.0]
    assert Interaction("u", "i", 0.0, 1.0).weight == 1.0


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty file"),
    ("user,item\n1,2\n", "missing column(s) user_id, item_id, timestamp"),
    ("user_id,item_id,timestamp\n", "no interactions after the header"),
    ("user_id,item_id,timestamp\nu1,i1,yesterday\n", ":2: timestamp 'yesterday' is neither a number"),
    ("user_id,item_id,timestamp\nu1,i1,5\nu1,,6\n", ":3: empty item_id"),
    ("user_id,item_id,timestamp,weight\nu1,i1,5,x\n", ":2: weight 'x' is not a number"),
    ("user_id,item_id,timestamp\nu1,i1,nan\n", ":2: timestamp and weight must be finite"),
])
def test_a_file_that_is_not_an_interactions_log_gets_one_line_naming_the_problem(tmp_path, text, problem):
    path = tmp_path / "log.csv"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "cli.main", "eval", "replay", "--interactions", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and str(path) in lines[0], proc.stderr


def test_items_without_metadata_get_the_same_vector_in_every_run(tmp_path):
    script = ("from evaluation.replay import item_vectors; "
              "print(item_vectors(['a', 'b'], {})['a'][:4].tolist())")
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1 and runs.pop().startswith("[")


def test_sequential_rules_follow_what_came_next_by_distance():
    from evaluation.baselines import SequentialRulesBaseline

    rules = SequentialRulesBaseline()
    for user, items in (("u1", "abc"), ("u2", "ab"), ("u3", "a")):
        for t, item in enumerate(items):
            rules.update(user, item, 1.0, float(t))
    scores = dict(zip(rules.items, rules.scores("u3", 10.0)))
    assert scores["b"] == 2.0 and scores["c"] == 0.5 and scores["a"] == 0.0  # b right after a twice, c at distance 2
    scores = dict(zip(rules.items, rules.scores("u2", 10.0)))  # last b (weight 1), then a (0.5)
    assert scores["c"] == 1.0 + 0.5 * 0.5 and scores["b"] == 0.5 * 2.0


def test_session_knn_votes_with_the_sessions_that_share_items():
    from evaluation.baselines import SessionKNNBaseline

    knn = SessionKNNBaseline(k=2)
    for user, items in (("u1", "abc"), ("u2", "abd"), ("u4", "xyz"), ("u3", "a")):
        for t, item in enumerate(items):
            knn.update(user, item, 1.0, float(t))
    scores = dict(zip(knn.items, knn.scores("u3", 10.0)))
    assert scores["b"] > scores["c"] == scores["d"] > 0 and scores["x"] == 0.0
    assert knn.scores("nobody", 10.0).sum() == 0.0
