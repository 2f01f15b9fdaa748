"""The committed topic GAN: pinned outputs, agreement with torch, determinism, latents and topics.

After a deliberate retrain, regenerate the golden values with
``python -m tests.unit.services.generation.test_generator``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devkit.corpus import TOPICS
from services.generation.core.generator import (
    TopicGenerator,
    load_generator,
    topic_index,
)
from services.generation.core.latent import latents, slerp
from shared.inference import ModelError, sha256_of
from shared.settings import ModelSettings

GOLDEN = Path(__file__).resolve().parents[3] / "golden" / "generator.json"
CHECKPOINT = ModelSettings().dir / "checkpoints" / "topic_gan_ema.pt"
GOLDEN_SEED = 1234


def golden_inputs(z_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every topic twice, latents from a fixed seed: (12,) topic ids, (12, z_dim) latents."""
    ids = np.tile(np.arange(len(TOPICS), dtype=np.int64), 2)
    return ids, latents(GOLDEN_SEED, len(ids), z_dim)


def golden_summary(image: np.ndarray) -> dict:
    """A compact fingerprint of (N, 3, 64, 64) outputs: channel means and an 8x8 subsample."""
    return {"channel_mean": image.mean(axis=(2, 3)).round(5).tolist(),
            "subsample": image[:, :, ::8, ::8].round(4).tolist()}


def regenerate() -> None:
    model = load_generator(ModelSettings())
    ids, z = golden_inputs(model.z_dim)
    (image,) = model.run({"z": z, "topic": ids})
    GOLDEN.write_text(json.dumps({"sha256": model.card.sha256, "version": model.version, "seed": GOLDEN_SEED,
                                  **golden_summary(image)}) + "\n")
    print(f"wrote {GOLDEN}")


@pytest.fixture(scope="module")
def model() -> TopicGenerator:
    return load_generator(ModelSettings())


def test_golden_output_is_pinned(model):
    golden = json.loads(GOLDEN.read_text())
    assert golden["sha256"] == model.card.sha256, \
        "the model changed: regenerate with `python -m tests.unit.services.generation.test_generator`"
    ids, z = golden_inputs(model.z_dim)
    (image,) = model.run({"z": z, "topic": ids})
    assert image.shape == (len(ids), 3, model.size, model.size)
    summary = golden_summary(image)
    np.testing.assert_allclose(summary["channel_mean"], golden["channel_mean"], atol=1e-4)
    np.testing.assert_allclose(summary["subsample"], golden["subsample"], atol=1e-3)


def test_onnx_matches_torch(model):
    torch = pytest.importorskip("torch")
    if not CHECKPOINT.exists():
        pytest.skip(f"{CHECKPOINT} not present (retrain with python -m training.train_gan)")
    from training.gan import ExportedGenerator, load_exported_generator

    net = load_exported_generator(CHECKPOINT)
    ids, z = golden_inputs(model.z_dim)
    with torch.no_grad():
        expected = ExportedGenerator(net).eval()(torch.from_numpy(z), torch.from_numpy(ids)).numpy()
    (image,) = model.run({"z": z, "topic": ids})
    np.testing.assert_allclose(image, expected, atol=1e-4)


def test_outputs_and_range(model):
    ids, z = golden_inputs(model.z_dim)
    (image,) = model.run({"z": z, "topic": ids})
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    out = model.generate(ids, z)
    assert out.shape == (len(ids), model.size, model.size, 3) and out.dtype == np.uint8


def test_same_seed_same_bytes(model):
    ids = np.array([0, 3, 5, 1], np.int64)
    first = model.generate(ids, latents(7, 4, model.z_dim))
    again = model.generate(ids, latents(7, 4, model.z_dim))
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != model.generate(ids, latents(8, 4, model.z_dim)).tobytes()


def test_batch_does_not_change_an_image(model):
    ids, z = golden_inputs(model.z_dim)
    batched = model.generate(ids, z).astype(int)
    alone = np.concatenate([model.generate(ids[i:i + 1], z[i:i + 1]) for i in range(len(ids))]).astype(int)
    assert np.abs(batched - alone).max() <= 1  # rounding of float noise only


def test_topic_changes_the_image(model):
    z = np.repeat(latents(3, 1, model.z_dim), len(TOPICS), axis=0)
    out = model.generate(np.arange(len(TOPICS)), z).astype(np.float32)
    gaps = [np.abs(out[i] - out[j]).mean() for i in range(len(out)) for j in range(i + 1, len(out))]
    assert min(gaps) > 5.0


def test_bad_inputs_are_refused(model):
    z = latents(0, 2, model.z_dim)
    with pytest.raises(ValueError, match="topic ids"):
        model.generate(np.array([0, len(TOPICS)]), z)
    with pytest.raises(ValueError, match="z must be"):
        model.generate(np.array([0, 1]), z[:, :3])
    with pytest.raises(ValueError, match="2 topic ids for 1"):
        model.generate(np.array([0, 1]), z[:1])


def test_topics_and_unknown_topic(model):
    assert model.topics == list(TOPICS)
    assert [topic_index(t) for t in TOPICS] == list(range(len(TOPICS)))
    assert model.topic_index("music") == TOPICS.index("music")
    with pytest.raises(ValueError) as err:
        topic_index("cooking")
    assert "'cooking'" in str(err.value) and all(t in str(err.value) for t in TOPICS)


def test_manifest_sha256_matches_file(model):
    assert model.card.sha256 == sha256_of(model.card.path)
    assert model.card.meta["z_dim"] == model.z_dim and model.card.meta["output_range"] == [0.0, 1.0]


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        load_generator(ModelSettings(), folder=tmp_path)


def test_latents_are_deterministic():
    a, b = latents(42, 5, 64), latents(42, 5, 64)
    assert a.dtype == np.float32 and a.shape == (5, 64)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, latents(43, 5, 64))
    np.testing.assert_array_equal(latents(42, 3, 64), a[:3])  # a prefix does not depend on the count


def test_slerp_endpoints_and_norms():
    a, b = latents(1, 1, 64)[0], latents(2, 1, 64)[0]
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-5)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-5)
    ts = np.linspace(0, 1, 9)[:, None]
    path = slerp(a, b, ts)
    assert path.shape == (9, 64)
    expected = (1 - ts[:, 0]) * np.linalg.norm(a) + ts[:, 0] * np.linalg.norm(b)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), expected, rtol=1e-5)
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    unit = slerp(ua, ub, ts)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)  # stays on the sphere
    lerp_mid = np.linalg.norm(0.5 * (ua + ub))
    assert lerp_mid < 0.9  # a straight line would cut through the inside of the sphere
    angles = np.arccos(np.clip((unit[1:] * unit[:-1]).sum(1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], atol=1e-4)  # constant angular speed
    np.testing.assert_allclose(slerp(a, a, 0.3), a, atol=1e-5)  # parallel inputs fall back to lerp


if __name__ == "__main__":
    regenerate()
