"""The distillation teacher is the committed Johnson net itself, and only a net of the student's style."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.export import MODELS_DIR
from training.train_style import load_teacher

STYLES = MODELS_DIR / "styles"


def test_the_teacher_loads_frozen_and_computes_what_the_shipped_onnx_model_computes():
    teacher = load_teacher(STYLES / "checkpoints" / "mosaic-johnson.pt", ["mosaic"])
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = teacher(x).numpy()
    session = ort.InferenceSession(str(STYLES / "mosaic-johnson.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"image": x.numpy()})[0] - expected).max() < 1e-3


def test_a_teacher_of_another_style_or_a_vae_is_refused():
    with pytest.raises(ValueError, match="trained for"):
        load_teacher(STYLES / "checkpoints" / "mosaic-johnson.pt", ["waves"])
    with pytest.raises(ValueError, match="VAE"):
        load_teacher(STYLES / "checkpoints" / "style-vae.pt", ["mosaic"])
