"""The stylization service's metrics, named clipstream_stylization_<what>_<unit>."""

from __future__ import annotations

from shared.metrics import counter, gauge, histogram, info

SERVICE = "stylization"

requests = counter(SERVICE, "requests", "Stylization requests, by outcome (ok, failed, repeated).", ("outcome",))
failures = counter(SERVICE, "failures", "Failed requests, by reason.", ("reason",))
frames = counter(SERVICE, "frames", "Frames stylized (rate() gives frames per second).")
fps = gauge(SERVICE, "fps", "ratio", "Frames per second of the last request (decode, ops, encode).")
duration = histogram(SERVICE, "request_duration", "Time to process one request.",
                     buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
in_progress = gauge(SERVICE, "in_progress", "count", "Requests being processed now.")
model = info(SERVICE, "model", "Style models loaded and the onnxruntime provider.")
