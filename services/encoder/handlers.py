"""videos.uploaded in -> fetch, analyse, embed, upsert -> videos.embedded out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from services.encoder import metrics
from services.encoder.core.pipeline import Analysis, analyse, duplicate_of
from services.encoder.engine import Embedded, EncoderEngine
from shared import topics
from shared.batching import MicroBatcher
from shared.consumer import Reject
from shared.events import Concept, InsightsCompleted, InsightsRequested, UploadFields, VideoEmbedded, VideoUploaded
from shared.fetch import FetchError, fetched
from shared.media import MediaError
from shared.publisher import publish
from shared.settings import FetchSettings
from shared.text import video_text
from shared.vectors import VectorRecord, VectorStore


@dataclass
class Encoder:
    engine: EncoderEngine
    store: VectorStore
    broker: KafkaBroker
    fetch: FetchSettings
    search_store: VectorStore | None = None

    def __post_init__(self) -> None:
        self.batcher: MicroBatcher = MicroBatcher(self.engine.embed_batch, self.engine.settings.max_batch)
        self.artefacts = self.engine.settings.artefacts_dir
        # uploads are handled concurrently: the duplicate check and the upsert go one at a time so
        # that of two copies arriving together, the second sees the first
        self.store_lock = asyncio.Lock()

    async def on_videos_uploaded(self, event: VideoUploaded) -> None:
        try:
            embedded = await self.embed(event)
        except (FetchError, MediaError) as exc:
            metrics.videos.labels("failed").inc()
            metrics.failures.labels(exc.reason).inc()
            raise Reject(f"{exc.reason}: {exc.detail}") from exc
        await publish(self.broker, topics.VIDEOS_EMBEDDED, embedded, metrics.SERVICE)

    async def on_insights_requested(self, event: InsightsRequested) -> None:
        """An unpublished upload: fetched, decoded and embedded like any other, its cover candidates kept, and
        nothing stored in the collections; the result (or why it failed) goes to ``insights.completed``."""
        started = time.perf_counter()
        common = {"request_id": event.request_id, "creator_id": event.creator_id, "title": event.title,
                  "tags": event.tags, "topic": event.topic}
        try:
            analysis, result = await self.analysed(event, f"insights-{event.request_id}")
        except (FetchError, MediaError) as exc:
            metrics.insights.labels("failed").inc()
            metrics.failures.labels(exc.reason).inc()
            done = InsightsCompleted(**common, status="failed", error=f"{exc.reason}: {exc.detail}",
                                     elapsed_ms=(time.perf_counter() - started) * 1000)
        else:
            metrics.insights.labels("ok").inc()
            done = InsightsCompleted(**{**common, "topic": event.topic or result.topic}, status="ok",
                                     vector=result.vector.tolist(), model_version=self.engine.version,
                                     concepts=[Concept(name=n, score=s) for n, s in result.concepts],
                                     covers=analysis.covers, elapsed_ms=(time.perf_counter() - started) * 1000)
        await publish(self.broker, topics.INSIGHTS_COMPLETED, done, metrics.SERVICE)

    async def analysed(self, upload: UploadFields, stem: str) -> tuple[Analysis, Embedded]:
        """Fetch, decode (artefacts under ``stem``) and embed one upload, timing each stage."""
        started = time.perf_counter()
        async with fetched(upload.source, self.fetch) as path:
            fetched_at = time.perf_counter()
            metrics.stage_seconds.labels("fetch").observe(fetched_at - started)
            analysis = await asyncio.to_thread(analyse, path, self.engine.media, self.artefacts, stem)
        decode_s = analysis.seconds["decode"]
        metrics.stage_seconds.labels("decode").observe(decode_s)
        metrics.frames.inc(analysis.keyframes.frames_decoded)
        metrics.decode_fps.set(analysis.keyframes.frames_decoded / max(decode_s, 1e-6))
        t = time.perf_counter()
        result: Embedded = await self.batcher.submit((analysis.keyframes.frames, video_text(upload.title, upload.tags)))
        metrics.stage_seconds.labels("embed").observe(time.perf_counter() - t)
        return analysis, result

    async def embed(self, event: VideoUploaded) -> VideoEmbedded:
        analysis, result = await self.analysed(event, event.video_id)
        t = time.perf_counter()
        async with self.store_lock:
            hits = self.store.search(result.vector, 2, exact=True)
            duplicate = duplicate_of([(h.id, h.score) for h in hits], event.video_id,
                                     self.engine.settings.duplicate_threshold)
            payload = self.payload(event, analysis, result, duplicate)
            self.store.upsert([VectorRecord(event.video_id, result.vector.tolist(), payload)])
            if self.search_store is not None:
                if result.search.any():
                    self.search_store.upsert([VectorRecord(event.video_id, result.search.tolist(), payload)])
                else:  # nothing a text query could match (blank frames, no words): not searchable
                    self.search_store.delete([event.video_id])
        metrics.stage_seconds.labels("upsert").observe(time.perf_counter() - t)
        metrics.videos.labels("duplicate" if duplicate else "embedded").inc()
        info = analysis.info
        return VideoEmbedded(
            video_id=event.video_id, vector=result.vector.tolist(), model_version=self.engine.version,
            title=event.title, tags=event.tags, topic=event.topic or result.topic, creator_id=event.creator_id,
            duration_s=info.duration_s, keyframes=len(analysis.keyframes.times_s),
            thumbnail=str(analysis.thumbnail) if analysis.thumbnail else None, covers=analysis.covers,
            duplicate_of=duplicate,
            created_at=event.uploaded_at, search_vector=result.search.tolist() if result.search.any() else [],
            concepts=[Concept(name=name, score=score) for name, score in result.concepts],
        )

    def payload(self, event: VideoUploaded, analysis: Analysis, result: Embedded, duplicate: str | None) -> dict:
        info = analysis.info
        return {
            "topic": event.topic or result.topic or "", "predicted_topic": result.topic or "", "tags": list(event.tags),
            "creator_id": event.creator_id, "title": event.title, "duration_s": round(info.duration_s, 3),
            "created_at": event.uploaded_at.timestamp(), "thumbnail": str(analysis.thumbnail or ""),
            "covers": analysis.covers,
            "audio": str(analysis.audio or ""), "audio_features": analysis.audio_features,
            "width": info.width, "height": info.height, "keyframes": len(analysis.keyframes.times_s),
            "scene_changes": analysis.keyframes.scene_changes, "model_version": self.engine.version,
            "duplicate_of": duplicate, "concepts": [name for name, _ in result.concepts],
            "concept_scores": [score for _, score in result.concepts], "topic_score": result.topic_score,
        }
