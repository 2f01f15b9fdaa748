"""Every committed ONNX model on each onnxruntime execution provider this machine has: throughput
and the largest difference from the CPU provider's output on the same input.

    python -m benchmarks.onnx_providers [--providers cpu,cuda] [--seconds 2] [--out FILE]

Needs numpy and onnxruntime (or onnxruntime-gpu) only, so it runs on a bare GPU machine. Inputs
are drawn from the manifests' shapes: style networks at 360p and 720p (batch 1, as the service
runs them), the topic GAN at batch 64, the video encoder at batch 8 x 16 frames. Host-device
copies are included (the service feeds numpy arrays). Writes
``benchmarks/results/onnx_providers.json`` (``onnx_providers_cuda.json`` when CUDA ran).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.common import machine, write_result

MODELS = Path(__file__).resolve().parents[1] / "models"
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
SIZES = {"360p": (360, 640), "720p": (720, 1280)}
BATCH = {"topic-gan": 64, "video-encoder": 8}


def manifests() -> dict[str, Path]:
    """Model name -> ONNX file, from every manifest under models/."""
    out = {}
    for manifest in sorted(MODELS.rglob("manifest.json")):
        for name, entry in json.loads(manifest.read_text())["models"].items():
            out[name] = manifest.parent / entry["file"]
    return out


def make_inputs(session: ort.InferenceSession, batch: int, hw: tuple[int, int], rng: np.random.Generator) -> dict:
    fill = {"batch": batch, "height": hw[0], "width": hw[1], "frames": 16}
    feeds = {}
    for spec in session.get_inputs():
        shape = [d if isinstance(d, int) else fill.get(d, 1) for d in spec.shape]
        if "int64" in spec.type:
            feeds[spec.name] = np.zeros(shape, np.int64)
        elif "bool" in spec.type:
            feeds[spec.name] = np.ones(shape, bool)
        else:
            feeds[spec.name] = rng.random(shape, dtype=np.float32)
    return feeds


def measure(session: ort.InferenceSession, feeds: dict, seconds: float) -> tuple[float, list[np.ndarray]]:
    """Runs per second after three warm-up runs, timed over at least ``seconds`` (and 3 runs)."""
    for _ in range(3):
        outputs = session.run(None, feeds)
    runs, started = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - started < seconds:
        session.run(None, feeds)
        runs += 1
    return runs / (time.perf_counter() - started), outputs


def cases(name: str) -> list[tuple[str, int, tuple[int, int]]]:
    if name in BATCH:
        return [(f"batch {BATCH[name]}", BATCH[name], (64, 64))]
    return [(label, 1, hw) for label, hw in SIZES.items()]


def run(providers: list[str], seconds: float) -> dict:
    available = ort.get_available_providers()
    rows = []
    for name, path in manifests().items():
        sessions = {}
        for p in providers:
            if PROVIDERS[p] not in available:
                continue
            ort.set_default_logger_severity(4 if p != "cpu" else 2)  # a provider that cannot load is skipped quietly
            s = ort.InferenceSession(str(path), providers=[PROVIDERS[p], "CPUExecutionProvider"])
            ort.set_default_logger_severity(2)
            if s.get_providers()[0] == PROVIDERS[p]:
                sessions[p] = s
        if not sessions:
            print(f"{name}: none of {providers} runs here, skipped", flush=True)
            continue
        for label, batch, hw in cases(name):
            feeds = make_inputs(next(iter(sessions.values())), batch, hw, np.random.default_rng(0))
            row = {"model": name, "input": label, "batch": batch}
            reference = None
            for p, s in sessions.items():
                per_s, outputs = measure(s, feeds, seconds)
                row[f"{p}_items_per_s"] = round(per_s * batch, 1)
                if reference is None:
                    reference = outputs
                else:
                    row[f"{p}_max_abs_diff_vs_{providers[0]}"] = float(max(
                        np.abs(a.astype(np.float64) - b).max() for a, b in zip(outputs, reference)))
            if "cpu" in sessions and len(sessions) > 1:
                other = next(p for p in sessions if p != "cpu")
                row[f"{other}_speedup"] = round(row[f"{other}_items_per_s"] / row["cpu_items_per_s"], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"onnxruntime": ort.__version__, "available_providers": available, "ran": providers, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--providers", default="cpu,cuda", help="comma-separated: cpu, cuda (missing ones are skipped)")
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per model, input and provider")
    p.add_argument("--out", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    result = run(args.providers.split(","), args.seconds)
    cuda = any("cuda_items_per_s" in r for r in result["rows"])
    path = write_result("onnx_providers_cuda" if cuda else "onnx_providers", result)
    if args.out:
        args.out.write_text(json.dumps({"benchmark": path.stem, "machine": machine(), **result}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
