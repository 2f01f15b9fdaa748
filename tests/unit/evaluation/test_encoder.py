"""The evaluation's metrics and transforms, on inputs whose answers are known by construction."""

import numpy as np
import pytest

from evaluation.encoder import TRANSFORMS, colour_histogram, knn_accuracy, recall_at_1


def test_recall_at_1_counts_the_original_found_first():
    gallery = np.eye(4, dtype=np.float32)
    queries = np.array([[0.9, 0.1, 0, 0], [0, 0.2, 0.9, 0], [0, 0, 0, 1]], np.float32)
    assert recall_at_1(queries, gallery, np.array([0, 2, 1])) == pytest.approx(2 / 3)


def test_knn_accuracy_votes_among_neighbours():
    refs = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    labels = np.array([0, 0, 1, 1])
    queries = np.array([[1, 0.05], [0.05, 1]], np.float32)
    assert knn_accuracy(queries, np.array([0, 1]), refs, labels, k=2) == 1.0
    assert knn_accuracy(queries, np.array([1, 0]), refs, labels, k=2) == 0.0


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transforms_keep_a_video_shape(name):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (20, 90, 160, 3), dtype=np.uint8)
    out = TRANSFORMS[name](frames, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.ndim == 4 and out.shape[3] == 3
    assert out.shape[1] % 2 == 0 and out.shape[2] % 2 == 0  # H.264 wants even sizes
    if name == "trim20":
        assert len(out) == 16


def test_colour_histogram_ignores_letterbox_bars():
    img = np.zeros((1, 40, 40, 3), np.uint8)
    img[:, 10:30] = (200, 30, 30)
    plain = np.broadcast_to(np.array((200, 30, 30), np.uint8), (1, 40, 40, 3)).copy()
    assert float(colour_histogram(img) @ colour_histogram(plain)) == pytest.approx(1.0, abs=1e-6)


def test_eval_encoder_runs_end_to_end_on_a_small_corpus(tmp_path):
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "cli.main", "eval", "encoder", "--json", "--workdir", str(tmp_path),
                          "--heldout", "3", "--train-clips", "12"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["copies"] == 18 and result["gallery"] == 15
    assert set(result["systems"]) == {"video-encoder", "colour-histogram"}
    for metrics in result["systems"].values():
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert (tmp_path / "encoder.json").exists()
