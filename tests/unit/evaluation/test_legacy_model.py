"""The committed ONNX encoder: pinned outputs, and agreement with the torch model it came from."""

import json

import numpy as np
import pytest

from evaluation.legacy_encoder import VideoEncoderModel
from shared.inference import ModelError, OnnxModel, card_from_manifest
from shared.settings import ModelSettings
from tests.golden.inputs import GOLDEN, golden_frames, golden_mask


@pytest.fixture(scope="module")
def model():
    return VideoEncoderModel(ModelSettings())


def test_golden_output_is_pinned(model):
    golden = json.loads(GOLDEN.read_text())
    assert golden["sha256"] == model.card.sha256, "the model changed: regenerate with `python -m tests.golden`"
    embedding, logits = model.run({"frames": golden_frames(), "mask": golden_mask()})
    np.testing.assert_allclose(embedding, np.array(golden["embedding"]), atol=2e-4)
    np.testing.assert_allclose(logits, np.array(golden["topic_logits"]), atol=2e-3)


def test_onnx_matches_torch(model):
    torch = pytest.importorskip("torch")
    from training.video_model import VideoEncoder

    checkpoint = torch.load(ModelSettings().dir / "checkpoints" / "video_encoder.pt", weights_only=False)
    net = VideoEncoder()
    net.load_state_dict(checkpoint["state_dict"])
    net.eval()
    frames, mask = golden_frames(), golden_mask()
    with torch.no_grad():
        t_emb, t_logits = net(torch.from_numpy(frames), torch.from_numpy(mask))
    o_emb, o_logits = model.run({"frames": frames, "mask": mask})
    np.testing.assert_allclose(o_emb, t_emb.numpy(), atol=1e-4)
    np.testing.assert_allclose(o_logits, t_logits.numpy(), atol=1e-3)


def test_dynamic_batch_and_padding(model):
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (k, 64, 64, 3), dtype=np.uint8) for k in (8, 3, 1)]
    together, probs = model.embed(clips)
    alone = np.concatenate([model.embed([c])[0] for c in clips])
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding never leaks into a clip's vector
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and probs.shape[1] == len(model.topics)


def test_tampered_model_is_refused(tmp_path):
    settings = ModelSettings()
    card = card_from_manifest(settings.dir / "manifest.json", "video-encoder")
    copy = tmp_path / "video_encoder.onnx"
    copy.write_bytes(card.path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelError, match="sha256"):
        OnnxModel(type(card)(card.name, copy, card.sha256, card.version, card.meta), settings)
