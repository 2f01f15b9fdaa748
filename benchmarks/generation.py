"""Generation throughput: raw images/s of the ONNX generator against the same generator in torch, and
end-to-end covers/s (generate, upscale to 512x512, JPEG-encode) through the service's code path.

    python -m benchmarks.generation [--seconds 3] [--provider cpu|auto]

Goals (CPU): >= 1,000 raw images/s at 64x64 with batch 64; >= 100 covers/s end to end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from services.generation.core.generator import load_generator
from services.generation.core.latent import latents
from services.generation.handlers import check, produce
from shared.events import GenerationRequested
from shared.settings import GenerationSettings, ModelSettings

BATCHES = (1, 16, 64)


def rate(fn, batch: int, seconds: float) -> float:
    fn()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += batch
    return done / (time.perf_counter() - start)


def torch_generator():
    import torch

    from training.gan import load_exported_generator
    from training.train_gan import EMA_WEIGHTS

    return torch, load_exported_generator(EMA_WEIGHTS)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--provider", default="cpu", choices=["cpu", "auto"])
    args = p.parse_args(argv)
    console = Console()
    gen = load_generator(ModelSettings(provider=args.provider))
    torch, tg = torch_generator()
    raw: dict[str, dict[str, float]] = {"onnxruntime": {}, "torch": {}}
    for b in BATCHES:
        z = latents(1, b, gen.z_dim)
        t = np.zeros(b, np.int64)
        raw["onnxruntime"][str(b)] = rate(lambda: gen.generate(t, z), b, args.seconds)
        zt, tt = torch.from_numpy(z), torch.from_numpy(t)

        def run_torch() -> None:
            with torch.no_grad():
                tg(zt, tt)

        raw["torch"][str(b)] = rate(run_torch, b, args.seconds)
    settings = GenerationSettings()
    with tempfile.TemporaryDirectory() as tmp:
        request = GenerationRequested(request_id="bench", topic=gen.topics[0], kind="cover", count=64, size=512)
        index = check(request, list(gen.topics), settings.max_pixels_per_request)
        covers = rate(lambda: produce(gen, request, index, Path(tmp), settings.batch), 64, args.seconds)
    table = Table("batch", "onnxruntime images/s", "torch images/s", "ratio", title=f"generator on {gen.provider}")
    for b in BATCHES:
        o, t = raw["onnxruntime"][str(b)], raw["torch"][str(b)]
        table.add_row(str(b), f"{o:,.0f}", f"{t:,.0f}", f"{o / t:.2f}x")
    console.print(table)
    console.print(f"end to end: {covers:,.1f} covers/s (64 per request, upscaled to 512x512, JPEG) (goal >= 100); "
                  f"raw batch 64: {raw['onnxruntime']['64']:,.0f} images/s (goal >= 1,000)")
    result = {"provider": gen.provider, "model_version": gen.version,
              "raw_images_per_s": {k: {b: round(v, 1) for b, v in d.items()} for k, d in raw.items()},
              "covers_512_per_s": round(covers, 1)}
    suffix = "" if gen.provider == "CPUExecutionProvider" else "_" + gen.provider.replace("ExecutionProvider", "").lower()
    console.print(f"wrote {write_result('generation' + suffix, result)}")
    return result


if __name__ == "__main__":
    main()
