"""``make bench``: run every benchmark; each prints ratios against a baseline from the same run."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["benchmarks.gateway_throughput", "benchmarks.encoder_ingest", "benchmarks.backbones",
              "benchmarks.recommender", "benchmarks.recommender_scale", "benchmarks.stylization",
              "benchmarks.generation", "benchmarks.onnx_providers"]


def main() -> int:
    for name in BENCHMARKS:
        print(f"==> {name}", flush=True)
        importlib.import_module(name).main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
