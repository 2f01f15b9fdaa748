"""`clipstream eval stylization` end to end on a small held-out sample, and its measures."""

from __future__ import annotations

import json

import cv2
import numpy as np

from evaluation.stylization import edge_ssim, run_eval, ssim


def test_ssim_is_one_for_equal_images_and_lower_for_changed_ones():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (64, 96)).astype(np.float32), (5, 5), 2)
    assert abs(ssim(img, img) - 1.0) < 1e-6
    assert ssim(img, img + rng.normal(0, 20, img.shape).astype(np.float32)) < 0.9
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert edge_ssim([frame], [frame]) > 0.999


def test_eval_reports_every_style_with_style_distance_dropping_and_flicker_reduced(tmp_path, capsys):
    assert run_eval(str(tmp_path), as_json=True, clips=2, count=6) == 0
    report = json.loads(capsys.readouterr().out)
    styles = {name: m for name, m in report["systems"].items() if "style_after" in m}
    assert {"mosaic", "waves", "ink", "mosaic-johnson", "mosaic-vae"} <= set(styles)
    for name, m in styles.items():
        assert m["style_after"] < m["style_before"], name
        assert m["style_after_independent"] < m["style_before_independent"], name
        assert m["temporal_steady"] < m["temporal_raw"], name
        assert 0 < m["content_edge_ssim"] < 1, name
    assert (tmp_path / "stylization_grid.png").exists()
