"""The vector sizes and model version read from the manifests are the encoder engine's own."""

import json

import pytest

from services.encoder.engine import EncoderEngine
from shared.inference import ModelError
from shared.search import QueryEncoder
from shared.settings import ModelSettings, Settings
from shared.vector_space import ModelSpace, model_id, model_space


def test_sizes_and_version_are_the_encoder_engines():
    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    space = model_space(settings.models)
    assert space == ModelSpace(engine.version, engine.dim, engine.space.search_dim)
    assert (space.video_dim, space.search_dim) == (engine.space.video_dim, engine.text.dim)
    assert space.id == model_id(engine.version) == model_id(space.version)
    assert engine.space.collection == f"{settings.encoder.collection}-{space.id}"
    assert (engine.space.collection, engine.space.search_collection) == space.collections(settings.encoder.collection)
    assert QueryEncoder(settings.models, settings.encoder, engine.text).dim == space.search_dim


def manifests(root, features: int, text: dict) -> ModelSettings:
    (root / "backbone").mkdir(parents=True)
    (root / "text").mkdir()
    (root / "backbone" / "manifest.json").write_text(json.dumps(
        {"file": "backbone.onnx", "version": "bb-v2", "dims": {"features": features, "classes": 10}}))
    (root / "text" / "manifest.json").write_text(json.dumps({"file": "text.onnx", **text}))
    return ModelSettings(cache_dir=root)


def test_sizes_follow_the_manifests_not_literals(tmp_path):
    space = model_space(manifests(tmp_path / "a", 7, {"version": "txt-v3", "dim": 5}))
    assert space == ModelSpace("bb-v2+mean+txt-v3", 7 + 2 * 5, 5)
    default_text = model_space(manifests(tmp_path / "b", 7, {"version": "txt"}))
    assert default_text.search_dim == 384, "a text manifest without dim: the text model's own default"


def test_missing_or_incomplete_manifests_say_how_to_prepare(tmp_path):
    with pytest.raises(ModelError, match="clipstream models prepare"):
        model_space(ModelSettings(cache_dir=tmp_path / "nothing"))
    settings = manifests(tmp_path / "c", 7, {"dim": 5})  # no version
    with pytest.raises(ModelError, match="models prepare --force"):
        model_space(settings)
