"""Write the golden outputs of the committed models (run after a deliberate retrain)."""

import json

from tests.golden.inputs import GOLDEN, golden_frames, golden_mask
from evaluation.legacy_encoder import VideoEncoderModel
from shared.settings import ModelSettings

model = VideoEncoderModel(ModelSettings())
embedding, logits = model.run({"frames": golden_frames(), "mask": golden_mask()})
GOLDEN.write_text(json.dumps({"sha256": model.card.sha256, "version": model.version,
                              "embedding": embedding.round(5).tolist(), "topic_logits": logits.round(4).tolist()},
                             indent=1) + "\n")
print(f"wrote {GOLDEN}")
