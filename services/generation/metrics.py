"""The generation service's metrics, named clipstream_generation_<what>_<unit>."""

from __future__ import annotations

from shared.metrics import counter, histogram, info

SERVICE = "generation"

requests = counter(SERVICE, "requests", "Generation requests, by kind and outcome (ok, failed, repeated).",
                   ("kind", "outcome"))
failures = counter(SERVICE, "failures", "Failed requests, by reason.", ("reason",))
images = counter(SERVICE, "images", "Images generated (covers, frames and clip frames; rate() gives images/s).")
duration = histogram(SERVICE, "request_duration", "Time to carry out one request, by kind.", ("kind",),
                     buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
model = info(SERVICE, "model", "Generator version, topics and the onnxruntime provider.")
