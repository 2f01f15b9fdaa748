"""generation.requests in -> covers, frames or a clip -> generation.completed out.

Checked before any work (known topic, the request's total pixels within the limit); what fails
is answered with a ``failed`` completion and dead-lettered with the reason. Idempotent by
``request_id``: a finished request is answered from its record, nothing is generated twice.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from faststream.kafka import KafkaBroker

from services.generation import metrics
from shared.budget import check_budget
from services.generation.core.artefacts import images, walk, write_clip, write_image
from shared import topics
from shared.consumer import Reject
from shared.events import GenerationCompleted, GenerationRequested
from shared.jobs import JobBook, RequestError
from shared.publisher import publish
from shared.settings import GenerationSettings


def check(request: GenerationRequested, topics_known: list[str], max_pixels: int) -> int:
    """The topic's index; raises RequestError for what the schema alone cannot refuse."""
    if request.topic not in topics_known:
        raise RequestError("unknown_topic", f"unknown topic {request.topic!r}; valid topics: {', '.join(topics_known)}")
    check_budget(request, max_pixels)
    return topics_known.index(request.topic)


def produce(generator, request: GenerationRequested, topic: int, folder: Path, batch: int) -> list[Path]:
    """Write the request's artefacts into ``folder`` (blocking; runs in a worker thread)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = request
    if r.kind == "clip":
        path = folder / "clip.mp4"
        write_clip(walk(generator, topic, r.seed, r.duration_s, r.fps, r.size), path, r.fps, r.size)
        metrics.images.inc(round(r.duration_s * r.fps))
        return [path]
    suffix = ".jpg" if r.kind == "cover" else ".png"
    out = [write_image(img, folder / f"{r.kind}-{i:02d}{suffix}")
           for i, img in enumerate(images(generator, topic, r.count, r.seed, r.size, batch))]
    metrics.images.inc(len(out))
    return out


@dataclass
class Generation:
    settings: GenerationSettings
    generator: object
    broker: KafkaBroker | None = None

    def __post_init__(self) -> None:
        self.jobs: JobBook[GenerationCompleted] = JobBook(self.settings.output_dir, GenerationCompleted)

    async def on_generation_requests(self, request: GenerationRequested) -> None:
        done = await self.run(request)
        if done.status == "failed":
            raise Reject(done.error or "failed")

    async def run(self, request: GenerationRequested) -> GenerationCompleted:
        previous = self.jobs.get(request.request_id)
        if previous is not None and previous.status == "ok" and all(Path(a).exists() for a in previous.artefacts):
            metrics.requests.labels(request.kind, "repeated").inc()
            await self._announce(previous)
            return previous
        started = time.perf_counter()
        gen = self.generator
        try:
            topic = check(request, list(gen.topics), self.settings.max_pixels_per_request)
            folder = self.settings.output_dir / request.request_id
            paths = await asyncio.to_thread(produce, gen, request, topic, folder, self.settings.batch)
            result = GenerationCompleted(request_id=request.request_id, status="ok", topic=request.topic,
                                         kind=request.kind, artefacts=[str(p.resolve()) for p in paths],
                                         model_version=gen.version, elapsed_ms=(time.perf_counter() - started) * 1000)
        except RequestError as exc:
            metrics.failures.labels(exc.reason).inc()
            result = GenerationCompleted(request_id=request.request_id, status="failed", topic=request.topic,
                                         kind=request.kind, error=str(exc),
                                         elapsed_ms=(time.perf_counter() - started) * 1000)
        metrics.requests.labels(request.kind, result.status).inc()
        metrics.duration.labels(request.kind).observe(time.perf_counter() - started)
        self.jobs.save(request.request_id, result)
        await self._announce(result)
        return result

    async def _announce(self, event: GenerationCompleted) -> None:
        self.jobs.note(event.request_id, event)
        if self.broker is not None:
            await publish(self.broker, topics.GENERATION_COMPLETED, event, metrics.SERVICE)
