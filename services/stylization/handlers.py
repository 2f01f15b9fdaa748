"""stylize.requests in -> (progress events) -> processed video -> stylize.completed out.

A request is checked before any decoding (styles, LUTs, looks, the source's safety and limits);
what fails is answered with a ``failed`` completion and dead-lettered with the reason. Requests
are idempotent by ``request_id``: a finished one is answered from its stored record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faststream.kafka import KafkaBroker

from services.stylization import metrics
from services.stylization.core.color import LOOKS
from services.stylization.core.lut import list_luts
from services.stylization.core.ops import RequestError, plan
from services.stylization.core.video import process_video
from shared import topics
from shared.consumer import Reject
from shared.events import StylizeCompleted, StylizeRequested, VideoUploaded
from shared.fetch import FetchError, fetched
from shared.jobs import JobBook
from shared.media import MediaError
from shared.publisher import publish
from shared.settings import FetchSettings, MediaSettings, StylizationSettings


@dataclass
class Stylizer:
    settings: StylizationSettings
    styles: Mapping[str, object]
    broker: KafkaBroker | None
    fetch: FetchSettings
    media: MediaSettings
    sources: dict[str, str] = field(default_factory=dict)  # video_id -> source, from videos.uploaded

    def __post_init__(self) -> None:
        self.jobs: JobBook[StylizeCompleted] = JobBook(self.settings.output_dir, StylizeCompleted)

    def status(self, request_id: str) -> StylizeCompleted | None:
        return self.jobs.get(request_id)

    async def on_videos_uploaded(self, event: VideoUploaded) -> None:
        self.sources[event.video_id] = event.source

    async def on_stylize_requests(self, request: StylizeRequested) -> None:
        done = await self.run(request)
        if done.status == "failed":
            raise Reject(done.error or "failed")

    async def run(self, request: StylizeRequested) -> StylizeCompleted:
        """Carry out one request, publishing progress and the result; never raises for bad input."""
        previous = self.status(request.request_id)
        if previous is not None and previous.status == "ok" and previous.output and Path(previous.output).exists():
            metrics.requests.labels("repeated").inc()
            await self._announce(previous)  # answered again, no work done twice
            return previous
        started = time.perf_counter()
        metrics.in_progress.inc()
        try:
            result = await self._process(request, started)
        except (RequestError, FetchError, MediaError) as exc:
            metrics.failures.labels(exc.reason).inc()
            result = StylizeCompleted(request_id=request.request_id, status="failed", error=str(exc),
                                      elapsed_ms=(time.perf_counter() - started) * 1000)
        finally:
            metrics.in_progress.dec()
        metrics.requests.labels(result.status).inc()
        metrics.duration.observe(time.perf_counter() - started)
        self.jobs.save(request.request_id, result)
        await self._announce(result)
        return result

    async def _process(self, request: StylizeRequested, started: float) -> StylizeCompleted:
        s = self.settings
        steps = plan(request.ops, self.styles, s.lut_dir, s.flicker_reduction)
        source = request.uri
        if source is None:
            source = self.sources.get(request.video_id or "")
            if source is None:
                raise RequestError("unknown_video", f"video {request.video_id!r} has not been uploaded")
        loop = asyncio.get_running_loop()
        last = [0.0]

        def progress(fraction: float) -> None:  # from the worker thread
            now = time.monotonic()
            if fraction < 1.0 and now - last[0] >= s.progress_every_s:
                last[0] = now
                running = StylizeCompleted(request_id=request.request_id, status="running", progress=round(fraction, 3),
                                           elapsed_ms=(time.perf_counter() - started) * 1000)
                asyncio.run_coroutine_threadsafe(self._announce(running), loop)

        out = s.output_dir / f"{request.request_id}.mp4"
        async with fetched(source, self.fetch) as path:
            video = await asyncio.to_thread(process_video, path, out, steps.transform(), scale=steps.scale,
                                            batch=s.batch, crf=s.crf, media=self.media,
                                            max_duration_s=s.max_duration_s, progress=progress)
        metrics.frames.inc(video.frames)
        metrics.fps.set(video.fps)
        return StylizeCompleted(request_id=request.request_id, status="ok", progress=1.0, output=str(out.resolve()),
                                elapsed_ms=(time.perf_counter() - started) * 1000)

    async def _announce(self, event: StylizeCompleted) -> None:
        self.jobs.note(event.request_id, event)
        if self.broker is not None:
            await publish(self.broker, topics.STYLIZE_COMPLETED, event, metrics.SERVICE)


def describe_styles(styles: Mapping[str, object], lut_dir: Path) -> dict:
    """What a request may name: styles (with their model kind), looks and LUTs."""
    return {"styles": {name: getattr(m, "kind", "model") for name, m in sorted(styles.items())},
            "looks": sorted(LOOKS), "luts": list_luts(lut_dir)}

