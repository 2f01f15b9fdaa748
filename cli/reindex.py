"""``clipstream reindex``: re-embed every video of ``videos.uploaded`` with the current encoder model.

A model version is data: its vectors go to collections of their own (``EncoderEngine.space``:
``<prefix>-<model id>`` and ``...-search``), so a new model is filled beside the old one while the
services keep serving the old. This command reads ``videos.uploaded`` from the beginning to its end
(without a consumer group: it commits nothing and moves no service's offsets), runs each upload
through the encoder's own code path (``Encoder.embed``: fetch, analyse, embed, duplicate check,
upsert into both stores, opened as the service opens them) and publishes ``videos.embedded`` with
the new ``model_version`` (recommenders on another version skip those events). The switch is the
services restarting with the new model.

A video already in the new collection with this model version and the same upload time is skipped,
so a run that was interrupted resumes where it stopped. A point is only kept once its event is
published: if publishing fails or the run is interrupted in between, the point is withdrawn again.
A record that does not decode or a video that cannot be fetched or decoded is counted and reported;
it never stops the run. The exit status is 0 when nothing failed, else 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SERVICE = "reindex"
ERRORS_IN_A_ROW = 10
"""Unexpected errors (not a bad video: a bug, an outage of the vector store) in a row that abort the run."""
SHOWN_FAILURES = 20


@dataclass(frozen=True)
class Failure:
    where: str  # the video id, or topic[partition]@offset for a record that did not decode
    reason: str
    detail: str


@dataclass
class Summary:
    version: str
    collection: str
    search_collection: str
    reembedded: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    aborted: str | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures and self.aborted is None

    def lines(self) -> list[str]:
        out = [f"re-embedded {self.reembedded}, skipped {self.skipped} (already there), failed {self.failed}",
               f"model {self.version} -> collection {self.collection} (search: {self.search_collection})"]
        if self.failures:
            reasons = Counter(f.reason for f in self.failures)
            out.append("failures by reason: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
            out += [f"  {f.where}: {f.reason}: {f.detail}" for f in self.failures[:SHOWN_FAILURES]]
            if self.failed > SHOWN_FAILURES:
                out.append(f"  ... and {self.failed - SHOWN_FAILURES} more")
        if self.aborted:
            out.append(f"aborted: {self.aborted} (run again to resume)")
        elif self.failures:
            out.append("fix or drop the failed uploads and run again: videos already done are skipped")
        else:
            out.append("done: restart the services with this model to switch to the new collection")
        return out


class Reindex:
    """One run: uploads in, one task per video (at most ``concurrency`` at once, the events of one video in
    topic order), counted in a :class:`Summary`."""

    def __init__(self, settings: Any, engine: Any, store: Any, search_store: Any, broker: Any,
                 advance=lambda: None) -> None:
        from services.encoder.handlers import Encoder

        self.settings, self.engine = settings, engine
        self.store, self.search_store, self.broker = store, search_store, broker
        self.encoder = Encoder(engine, store, broker, settings.fetch, search_store)
        space = engine.space
        self.summary = Summary(engine.version, space.collection, space.search_collection)
        self.advance = advance
        self.errors_in_a_row = 0

    @property
    def fatal(self) -> str | None:
        """Why the run stops early (None: it goes on)."""
        return self.summary.aborted

    @fatal.setter
    def fatal(self, why: str) -> None:
        self.summary.aborted = self.summary.aborted or why

    async def run(self, bootstrap: str, limit: int | None = None) -> Summary:
        from shared import topics
        from shared.codec import Rejection, decode
        from shared.replay import records_to_end

        topic = topics.VIDEOS_UPLOADED
        gate = asyncio.Semaphore(self.settings.encoder.concurrency)
        newest: dict[str, asyncio.Task] = {}  # per video: the task of its latest event (a later one waits for it)
        tasks: set[asyncio.Task] = set()
        read = 0

        def finished(task: asyncio.Task, video_id: str) -> None:
            gate.release()
            tasks.discard(task)
            if newest.get(video_id) is task:
                del newest[video_id]

        try:
            async with aclosing(records_to_end(bootstrap, topic.name)) as records:
                async for record in records:
                    if self.fatal or (limit is not None and read >= limit):
                        break
                    read += 1
                    event = decode(record.value, topic.event, self.settings.kafka.max_message_bytes)
                    if isinstance(event, Rejection):
                        self.fail(f"{record.topic}[{record.partition}]@{record.offset}", event.reason.value,
                                  event.detail)
                        self.advance()
                        continue
                    await gate.acquire()
                    task = asyncio.create_task(self.one(event, newest.get(event.video_id)))
                    newest[event.video_id] = task
                    tasks.add(task)
                    task.add_done_callback(lambda t, vid=event.video_id: finished(t, vid))
            if tasks:
                await asyncio.wait(set(tasks))
        finally:
            for task in list(tasks):  # interrupted: in-flight videos withdraw what they stored
                task.cancel()
            if tasks:
                await asyncio.wait(set(tasks))
        return self.summary

    def fail(self, where: str, reason: str, detail: str) -> None:
        self.summary.failures.append(Failure(where, reason, detail))
        log.warning("%s failed: %s: %s", where, reason, detail)

    def current(self, event: Any) -> bool:
        """The new collection already holds this upload, embedded by this model version."""
        points = self.store.get([event.video_id])
        if not points:
            return False
        payload = points[0].payload
        created = payload.get("created_at")
        return (payload.get("model_version") == self.engine.version and isinstance(created, (int, float))
                and abs(created - event.uploaded_at.timestamp()) < 1e-3)

    def withdraw(self, video_id: str) -> None:
        for store in (self.store, self.search_store):
            try:
                store.delete([video_id])
            except Exception:
                log.exception("could not withdraw %s from the new collection; run again to redo it", video_id)

    async def one(self, event: Any, before: asyncio.Task | None) -> None:
        from shared import topics
        from shared.fetch import FetchError
        from shared.media import MediaError
        from shared.publisher import publish

        try:
            if before is not None:
                await asyncio.wait([before])
            if self.fatal:
                return
            if self.current(event):
                self.summary.skipped += 1
                return
            try:
                embedded = await self.encoder.embed(event)
            except (FetchError, MediaError) as exc:
                self.fail(event.video_id, exc.reason, exc.detail)
                return
            except Exception as exc:  # a bug or an outage: counted, and too many in a row stop the run
                log.exception("re-embedding %s failed", event.video_id)
                self.fail(event.video_id, "processing_error", f"{type(exc).__name__}: {exc}")
                self.errors_in_a_row += 1
                if self.errors_in_a_row >= ERRORS_IN_A_ROW:
                    self.fatal = f"{ERRORS_IN_A_ROW} unexpected errors in a row, the last: {type(exc).__name__}: {exc}"
                return
            try:
                await publish(self.broker, topics.VIDEOS_EMBEDDED, embedded, SERVICE)
            except BaseException as exc:  # no event, no point: a rerun must not skip this video
                self.withdraw(event.video_id)
                if isinstance(exc, Exception):
                    self.fail(event.video_id, "publish_failed", f"{type(exc).__name__}: {exc}")
                    self.fatal = f"publishing {topics.VIDEOS_EMBEDDED.name} failed: {type(exc).__name__}: {exc}"
                    return
                raise
            self.errors_in_a_row = 0
            self.summary.reembedded += 1
        finally:
            self.advance()


async def backlog(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` now (the end offsets minus the beginning ones, over all partitions)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not parts:
            return 0
        begin, end = await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)
        return sum(max(end[p] - begin[p], 0) for p in parts)
    finally:
        await consumer.stop()


async def reindex(settings: Any, engine: Any, limit: int | None = None, show_progress: bool = True) -> Summary:
    """Re-embed ``videos.uploaded`` with ``engine`` into its collections; see the module note."""
    from services.encoder.app import open_stores
    from shared import topics
    from shared.bus import make_broker
    from shared.progress import bar

    bootstrap = settings.kafka.bootstrap_servers
    total = await backlog(bootstrap, topics.VIDEOS_UPLOADED.name)
    if limit is not None:
        total = min(total, limit)
    store, search_store = open_stores(settings, engine)
    broker = make_broker(SERVICE, settings.kafka)
    try:
        await broker.start()
        if show_progress:
            with bar(f"re-embedding into {engine.space.collection}", max(total, 1)) as progress:
                run = Reindex(settings, engine, store, search_store, broker, lambda: progress.update(1))
                return await run.run(bootstrap, limit)
        return await Reindex(settings, engine, store, search_store, broker).run(bootstrap, limit)
    finally:
        try:
            await broker.stop()
        finally:
            store.close()
            search_store.close()


def run_reindex(bootstrap: str | None, limit: int | None) -> int:
    """The command: settings from the environment (``bootstrap`` overrides Kafka's), the current model."""
    from services.encoder.engine import EncoderEngine
    from shared.settings import Settings
    from shared.vectors import StoreLocked

    settings = Settings()
    if bootstrap:
        settings = settings.with_section("kafka", bootstrap_servers=bootstrap)
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    engine.warmup()
    try:
        summary = asyncio.run(reindex(settings, engine, limit))
    except StoreLocked as exc:  # an encoder of this model version is running on the embedded store
        print(f"{exc}: stop the encoder that runs this model first", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line, flush=True)
    return 0 if summary.ok else 1
