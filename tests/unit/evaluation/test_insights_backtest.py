"""`clipstream eval insights`: Spearman with ties, and the backtest end to end on the synthetic log."""

import json
import subprocess
import sys

import numpy as np

from evaluation.insights import ranks, spearman, topic_of


def test_ranks_average_ties_and_spearman_reads_them():
    assert ranks(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == 1.0
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == -1.0
    assert spearman(np.array([1, 1, 1]), np.array([1, 2, 3])) == 0.0  # a constant forecast says nothing
    # ties: x = [1, 2, 2, 3] ranks [1, 2.5, 2.5, 4]; y ranks [1, 3, 2, 4]
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([1, 3, 2, 4.0])
    expected = np.corrcoef(rx, ry)[0, 1]
    assert abs(spearman(np.array([1, 2, 2, 3]), np.array([1, 3, 2, 4])) - expected) < 1e-12


def test_topic_is_the_topic_column_else_the_first_tag():
    assert topic_of({"topic": "sports", "tags": ["x"]}) == "sports"
    assert topic_of({"topic": None, "tags": ["category-3", "y"]}) == "category-3"
    assert topic_of({}) is None


def test_backtest_end_to_end_on_the_synthetic_log(tmp_path):
    subprocess.run([sys.executable, "-m", "cli.main", "interactions", "--out", str(tmp_path), "--users", "60",
                    "--items", "150", "--events", "2000", "--seed", "3"], check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-m", "cli.main", "eval", "insights", "--interactions",
                          str(tmp_path / "interactions.csv"), "--items", str(tmp_path / "items.csv"), "--json",
                          "--active-days", "1", "--window-days", "1"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["items"] >= 10 and result["items_with_reach"] > 0
    for key in ("spearman_reach", "spearman_topic_popularity", "spearman_reach_events"):
        assert -1 <= result[key] <= 1
    for forecast, difference in (("spearman_reach", "difference"), ("spearman_reach_events", "reach_events_difference")):
        lo, hi = result[difference + "_ci95"]
        assert lo <= result[difference] <= hi
        assert abs(result[difference] - (result[forecast] - result["spearman_topic_popularity"])) < 2e-4


def test_a_log_too_short_for_the_window_is_one_line(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,a,1\nu2,b,2\nu1,b,3\n")
    out = subprocess.run([sys.executable, "-m", "cli.main", "eval", "insights", "--interactions",
                          str(tmp_path / "log.csv")], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "too few to correlate" in out.stderr and "Traceback" not in out.stderr
