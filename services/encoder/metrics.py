"""The encoder's metrics, named clipstream_encoder_<what>_<unit>."""

from __future__ import annotations

from shared.metrics import counter, gauge, histogram, info

SERVICE = "encoder"
STAGES = ("fetch", "decode", "embed", "upsert")

videos = counter(SERVICE, "videos", "Uploads handled, by outcome (embedded, duplicate, failed).", ("outcome",))
failures = counter(SERVICE, "failures", "Uploads that failed, by reason.", ("reason",))
insights = counter(SERVICE, "insights_uploads", "Unpublished uploads analysed for creator insights, by outcome (ok, failed).",
                   ("outcome",))
stage_seconds = histogram(SERVICE, "stage_duration", "Time spent per stage of one upload.", ("stage",))
frames = counter(SERVICE, "decoded_frames", "Video frames decoded (rate() gives frames per second).")
decode_fps = gauge(SERVICE, "decode_fps", "ratio", "Frames per second of the last decoded video.")
model = info(SERVICE, "model", "Models in use and the onnxruntime provider.")
