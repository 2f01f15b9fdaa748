"""Golden outputs of the committed style models. Regenerate after a deliberate retrain:

    python -m tests.golden_styles
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "golden" / "style_models.json"


def golden_image() -> np.ndarray:
    """A fixed (1, 64, 96, 3) uint8 image: horizontal and vertical ramps, a diagonal wave, a dark disc."""
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    img = np.stack([x / 95, y / 63, 0.5 + 0.5 * np.sin((x + y) / 7)], axis=-1)
    img[(x - 60) ** 2 + (y - 30) ** 2 < 15 ** 2] = 0.1
    return (img[None] * 255 + 0.5).astype(np.uint8)


def summarise(out: np.ndarray) -> dict:
    """Per-channel means and a 4x4 grid of pixels (flattened RGB) of a (1, 64, 96, 3) uint8 output."""
    return {"mean": out.reshape(-1, 3).mean(0).round(3).tolist(), "pixels": out[0, 8::16, 12::24].ravel().tolist()}


def main() -> None:
    from services.stylization.core.style_models import load_styles
    from shared.settings import ModelSettings

    models = load_styles(ModelSettings(provider="cpu"))
    data = {name: {"model": m.card.name, "sha256": m.card.sha256, "version": m.version,
                   **summarise(m.stylize(golden_image()))} for name, m in sorted(models.items())}
    GOLDEN.write_text("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items()) + "\n}\n")
    print(f"wrote {GOLDEN} ({len(data)} styles)")


if __name__ == "__main__":
    main()
