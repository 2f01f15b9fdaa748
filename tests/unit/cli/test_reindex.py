"""cli/reindex.py without Kafka or models: what is skipped, what is counted, and that a point whose event
could not be published is withdrawn (so a rerun redoes it instead of skipping it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from cli.reindex import ERRORS_IN_A_ROW, Reindex
from shared.events import VideoEmbedded, VideoUploaded
from shared.fetch import FetchError
from shared.settings import Settings
from shared.vectors import VectorRecord

VERSION = "backbone-v2+mean+text-v1"
WHEN = datetime(2025, 1, 2, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.points: dict[str, VectorRecord] = {}

    def get(self, ids, with_vectors=False):
        return [self.points[i] for i in ids if i in self.points]

    def upsert(self, records):
        self.points.update({r.id: r for r in records})

    def delete(self, ids):
        for i in ids:
            self.points.pop(i, None)


class Broker:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.sent = fail, []

    async def publish(self, body, topic, key=None, headers=None):
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append((topic, key))


class FakeEncoder:
    """Encoder.embed's contract: upsert into both stores, return the event."""

    def __init__(self, run: Reindex, error: Exception | None = None) -> None:
        self.run, self.error, self.calls = run, error, 0

    async def embed(self, event: VideoUploaded) -> VideoEmbedded:
        self.calls += 1
        if self.error is not None:
            raise self.error
        payload = {"model_version": VERSION, "created_at": event.uploaded_at.timestamp()}
        for store in (self.run.store, self.run.search_store):
            store.upsert([VectorRecord(event.video_id, [1.0, 0.0], payload)])
        return VideoEmbedded(video_id=event.video_id, vector=[1.0, 0.0], model_version=VERSION,
                             creator_id=event.creator_id, duration_s=1.0)


def make_run(broker: Broker, error: Exception | None = None) -> Reindex:
    space = SimpleNamespace(collection="videos-abc", search_collection="videos-abc-search")
    engine = SimpleNamespace(version=VERSION, space=space,
                             settings=SimpleNamespace(max_batch=4, artefacts_dir="unused"), embed_batch=None)
    run = Reindex(Settings(), engine, Store(), Store(), broker)
    run.encoder = FakeEncoder(run, error)
    return run


def upload(video_id: str, when: datetime = WHEN) -> VideoUploaded:
    return VideoUploaded(video_id=video_id, source=f"{video_id}.mp4", creator_id="c", uploaded_at=when)


async def test_embeds_publishes_then_skips_what_is_done():
    broker = Broker()
    run = make_run(broker)
    await run.one(upload("v1"), None)
    assert run.summary.reembedded == 1 and broker.sent == [("videos.embedded", b"v1")]
    await run.one(upload("v1"), None)  # the same upload again (a rerun, or a redelivered record)
    assert run.summary.skipped == 1 and run.encoder.calls == 1 and len(broker.sent) == 1
    await run.one(upload("v1", WHEN + timedelta(hours=1)), None)  # a later upload of that id: last one wins
    assert run.summary.reembedded == 2 and run.encoder.calls == 2
    assert run.summary.ok


async def test_a_point_of_an_older_model_is_not_skipped():
    run = make_run(Broker())
    run.store.upsert([VectorRecord("v1", [0.0, 1.0], {"model_version": "old", "created_at": WHEN.timestamp()})])
    await run.one(upload("v1"), None)
    assert run.summary.reembedded == 1 and run.store.points["v1"].payload["model_version"] == VERSION


async def test_a_bad_video_is_counted_and_the_run_goes_on():
    run = make_run(Broker(), FetchError("unsafe_source", "outside the media root"))
    await run.one(upload("v1"), None)
    assert [(f.where, f.reason) for f in run.summary.failures] == [("v1", "unsafe_source")]
    assert run.fatal is None and not run.summary.ok


async def test_unexpected_errors_in_a_row_abort_the_run():
    run = make_run(Broker(), RuntimeError("vector store down"))
    for i in range(ERRORS_IN_A_ROW):
        await run.one(upload(f"v{i}"), None)
    assert run.fatal and "vector store down" in run.fatal


async def test_a_point_whose_event_was_not_published_is_withdrawn():
    run = make_run(Broker(fail=True))
    await run.one(upload("v1"), None)
    assert run.store.points == {} and run.search_store.points == {}, "a rerun must redo it, not skip it"
    assert run.fatal and "broker unreachable" in run.fatal
    assert [f.reason for f in run.summary.failures] == ["publish_failed"]
    assert "aborted" in "\n".join(run.summary.lines())
