"""A poison record of each kind (undecodable, wrong version, nested, oversized, tombstone) on every
consumed topic, before and between valid records: every valid record is applied, each bad one is
dead-lettered once per consuming service, and the consumers go on (issue 14, finding 1 and 3)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.events import GenerationRequested, StylizeRequested, VideoEmbedded, VideoUploaded, WatchEvent
from shared.replay import read_to_end
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from tests import media_files
from tests.faults.metrics_text import scrape, value
from tests.recsys_data import current_space

MAX_BYTES = 64 * 1024
DEPTH = 20_000  # 40 KB: under the size limit, far past any parser stack
POISON: dict[str, bytes | None] = {
    "undecodable": b"\xff\xfe{not json at all",
    "wrong version": None,  # filled per topic: a valid record of the topic with schema_version 2
    "nested": b"[" * DEPTH + b"]" * DEPTH,
    "oversized": None,  # filled per topic: a valid record padded past MAX_BYTES
    "tombstone": None,
}
EXPECTED_REASONS = Counter({"malformed_json": 3, "unknown_schema_version": 1, "oversized": 1})
CONSUMERS = {  # topic -> services that consume it (each dead-letters on its own)
    topics.WATCH_EVENTS.name: ["recommender"],
    topics.VIDEOS_EMBEDDED.name: ["recommender"],
    topics.GENERATION_REQUESTS.name: ["generation"],
    topics.STYLIZE_REQUESTS.name: ["stylization"],
    topics.VIDEOS_UPLOADED.name: ["encoder", "stylization"],
}


def poison_for(valid: bytes) -> list[tuple[str, bytes | None]]:
    data = json.loads(valid)
    return [
        ("undecodable", POISON["undecodable"]),
        ("wrong version", json.dumps({**data, "schema_version": 2}).encode()),
        ("nested", POISON["nested"]),
        ("oversized", json.dumps({**data, "padding": "x" * MAX_BYTES}).encode()),
        ("tombstone", None),
    ]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    root = tmp_path_factory.mktemp("poison")
    media = root / "media"
    media.mkdir()
    with EmbeddedBroker(log_path=root / "broker.log") as broker:
        common = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
                  "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200", "CLIPSTREAM_KAFKA_MAX_MESSAGE_BYTES": str(MAX_BYTES),
                  "CLIPSTREAM_FETCH_MEDIA_ROOT": str(media), "CLIPSTREAM_QDRANT_DATA_DIR": str(root / "qdrant")}
        procs = {
            "recommender": ServiceProcess("recommender", free_port(), log_path=root / "recommender.log", env={
                **common, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(root / "state")}),
            "generation": ServiceProcess("generation", free_port(), log_path=root / "generation.log", env={
                **common, "CLIPSTREAM_GENERATION_OUTPUT_DIR": str(root / "generated")}),
            "stylization": ServiceProcess("stylization", free_port(), log_path=root / "stylization.log", env={
                **common, "CLIPSTREAM_STYLIZATION_OUTPUT_DIR": str(root / "stylized")}),
            "encoder": ServiceProcess("encoder", free_port(), log_path=root / "encoder.log", env={
                **common, "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(root / "artefacts")}),
        }
        for proc in procs.values():
            proc.start()
        try:
            yield {"broker": broker, "media": media, "procs": procs}
        finally:
            for proc in procs.values():
                proc.stop()


def valid_records(topic: str, media) -> list[tuple[bytes, bytes]]:
    """(key, value) of valid records for ``topic``; all share the first record's key (one partition)."""
    now = datetime.now(UTC)
    if topic == topics.WATCH_EVENTS.name:
        events = [WatchEvent(user_id="poisoned-user", video_id=f"v{i % 5}", action="play", event_id=f"ev-{i}", ts=now)
                  for i in range(199)]
    elif topic == topics.VIDEOS_EMBEDDED.name:
        rng = np.random.default_rng(0)
        space = current_space()  # the recommender keeps embeddings of another model out of its catalogue
        events = [VideoEmbedded(video_id=f"emb-{i}", vector=rng.normal(size=space.video_dim).round(4).tolist(),
                                model_version=space.version, creator_id="c", duration_s=2.0) for i in range(3)]
    elif topic == topics.GENERATION_REQUESTS.name:
        events = [GenerationRequested(request_id=f"gen-{i}", topic="sports", kind="cover", size=64) for i in range(2)]
    elif topic == topics.STYLIZE_REQUESTS.name:
        clip = media_files.good_clip(media, 7, seconds=1.0)
        events = [StylizeRequested(request_id=f"sty-{i}", uri=clip.name, ops=[{"color": {"saturation": 1.2}}])
                  for i in range(2)]
    else:
        clip = media_files.good_clip(media, 8, seconds=1.0)
        events = [VideoUploaded(video_id=f"up-{i}", source=clip.name, creator_id="c", title="a clip") for i in range(2)]
    topic_ = topics.by_name(topic)
    key = str(getattr(events[0], topic_.key_field)).encode()
    return [(key, e.model_dump_json().encode()) for e in events]


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for key, value in records:  # one at a time: the order on the partition is the order here
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def letters(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(v) async for v in read_to_end(bootstrap, topics.by_name(topic).dlq)]


async def eventually(check, timeout_s: float = 240.0):
    """Poll ``check`` (returns None while not there yet, else the value) until it answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got is not None:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s"
        await asyncio.sleep(0.5)


async def finals(bootstrap: str, topic: str, field: str, wanted: set[str]) -> dict[str, dict]:
    """The last event of ``topic`` for each wanted id that is not a progress report."""
    seen = {}
    async for raw in read_to_end(bootstrap, topic):
        try:
            event = json.loads(raw)
        except (TypeError, ValueError, RecursionError):  # this suite's own poison on the topic
            continue
        if isinstance(event, dict) and event.get(field) in wanted and event.get("status") != "running":
            seen[event[field]] = event
    return seen


@pytest.mark.parametrize("topic", list(CONSUMERS))
async def test_poison_then_valid_records_all_valid_applied_each_bad_one_dead_lettered_once(platform, topic):
    bootstrap, procs = platform["broker"].bootstrap, platform["procs"]
    valid = valid_records(topic, platform["media"])
    key = valid[0][0]
    bad = poison_for(valid[0][1])
    # poison first (the reported case), then a valid record, then the rest of the poison, then the rest
    sequence = [(key, v) for _, v in bad[:2]] + valid[:1] + [(key, v) for _, v in bad[2:]] + valid[1:]
    await produce(bootstrap, topic, sequence)
    services = CONSUMERS[topic]

    async def dead_lettered():
        got = [d for d in await letters(bootstrap, topic) if d["source_topic"] == topic]
        return got if len(got) >= len(bad) * len(services) else None

    found = await eventually(dead_lettered)
    for service in services:
        mine = [d for d in found if d["service"] == service]
        assert Counter(d["reason"] for d in mine) == EXPECTED_REASONS, mine
        assert len({d["offset"] for d in mine}) == len(bad), "each bad record is dead-lettered once"

    async def consumed():
        counts = {s: value(scrape(procs[s].url), f"clipstream_{s}_messages_total", topic=topic, outcome="ok")
                  for s in services}
        return counts if all(c >= len(valid) for c in counts.values()) else None

    counts = await eventually(consumed)
    assert set(counts.values()) == {len(valid)}, counts
    for service in services:
        dl = value(scrape(procs[service].url), f"clipstream_{service}_messages_total", topic=topic, outcome="dead_lettered")
        assert dl == len(bad)
    await applied_everywhere(topic, valid, platform)


async def applied_everywhere(topic: str, valid: list[tuple[bytes, bytes]], platform) -> None:
    """What each valid record should have done, beyond being counted."""
    bootstrap, procs = platform["broker"].bootstrap, platform["procs"]
    if topic == topics.WATCH_EVENTS.name:
        samples = scrape(procs["recommender"].url)
        applied = value(samples, "clipstream_recommender_events_applied_total", result="applied")
        assert applied == len(valid), "every valid watch event after the poison is applied"
        return
    if topic == topics.VIDEOS_EMBEDDED.name:
        assert value(scrape(procs["recommender"].url), "clipstream_recommender_catalogue_videos_count") >= len(valid)
        return
    id_field = "video_id" if topic == topics.VIDEOS_UPLOADED.name else "request_id"
    ids = {json.loads(v)[id_field] for _, v in valid}
    target, field = {topics.GENERATION_REQUESTS.name: (topics.GENERATION_COMPLETED.name, "request_id"),
                     topics.STYLIZE_REQUESTS.name: (topics.STYLIZE_COMPLETED.name, "request_id"),
                     topics.VIDEOS_UPLOADED.name: (topics.VIDEOS_EMBEDDED.name, "video_id")}[topic]

    async def done():
        seen = await finals(bootstrap, target, field, ids)
        return seen if set(seen) == ids else None

    results = await eventually(done)
    assert all(e.get("status", "ok") == "ok" for e in results.values()), results
