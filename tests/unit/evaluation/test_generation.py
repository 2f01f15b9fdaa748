"""`clipstream eval generation` end to end on a small sample, and its measures."""

from __future__ import annotations

import json

import numpy as np

from evaluation.generation import diversity, frechet, knn_accuracy, run_eval


def test_measures_on_known_inputs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    assert abs(frechet(a, a)) < 1e-6
    assert frechet(a, a + 3.0) > frechet(a, a + 0.5) > 0
    ref = np.eye(3)[[0, 1, 2] * 5]
    assert knn_accuracy(ref, np.array([0, 1, 2] * 5), np.eye(3), np.array([0, 1, 2]), k=3) == 1.0
    same = np.tile([[1.0, 0.0]], (5, 1))
    assert diversity(same, np.zeros(5, int)) == 0.0


def test_trained_generator_beats_the_untrained_one(tmp_path, capsys):
    assert run_eval(str(tmp_path), as_json=True, per_topic=30) == 0
    report = json.loads(capsys.readouterr().out)
    trained, untrained = report["systems"]["trained"], report["systems"]["untrained"]
    assert trained["conditional_accuracy"] > untrained["conditional_accuracy"]
    assert trained["frechet_distance"] < untrained["frechet_distance"]
    assert 0.5 <= trained["diversity_vs_real"] <= 1.5
    assert len(report["topics"]) == 6 and all((tmp_path / f"generation_{t}.png").exists() for t in report["topics"])
