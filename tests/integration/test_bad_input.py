"""Acceptance 4: each kind of bad input gets a clear 4xx or a dead-letter record; nothing else is lost."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import DeadLetterReason, WatchEvent
from tests.integration.conftest import API_KEY, wait_for

TEN_MB = 10 * 1024 * 1024
GOOD = {"schema_version": 1, "user_id": "u1", "video_id": "v1", "action": "play"}


@pytest.fixture
def api(gateway):
    with httpx.Client(base_url=gateway.url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
        yield client


@pytest.mark.parametrize("case,request_kwargs,status,message", [
    ("malformed JSON", dict(url="/v1/events/watch", content=b'{"user_id": ', headers={"content-type": "application/json"}),
     422, "JSON decode error"),
    ("missing field", dict(url="/v1/events/watch", json={"user_id": "u1", "action": "play"}), 422, "video_id"),
    ("10 MB event", dict(url="/v1/events/watch", json={**GOOD, "session_id": "x" * TEN_MB}), 413, "larger than"),
    ("wrong API key", dict(url="/v1/events/watch", json={"user_id": "u", "video_id": "v", "action": "play"},
                           headers={"X-API-Key": "guess"}), 401, "invalid API key"),
    ("path outside media root", dict(url="/v1/videos", json={"source": "../../etc/passwd", "creator_id": "c"}),
     422, "outside the media root"),
    ("loopback URL", dict(url="/v1/videos", json={"source": "http://localhost:9092/", "creator_id": "c"}), 422, "non-public"),
    ("link-local URL", dict(url="/v1/videos", json={"source": "http://169.254.169.254/latest/meta-data/",
                                                    "creator_id": "c"}), 422, "non-public"),
    ("private URL", dict(url="/v1/videos", json={"source": "https://192.168.1.20/v.mp4", "creator_id": "c"}),
     422, "non-public"),
])
def test_gateway_refuses_bad_input_with_a_reason(api, case, request_kwargs, status, message):
    resp = api.post(**request_kwargs)
    assert resp.status_code == status, (case, resp.text)
    assert message in resp.json()["detail"], case


def test_gateway_counts_refusals_and_still_serves(api):
    api.post("/v1/videos", json={"source": "../../etc/passwd", "creator_id": "c"})
    api.post("/v1/events/watch", json={"user_id": "u"}, headers={"X-API-Key": "nope"})
    assert api.post("/v1/events/watch", json={"user_id": "u1", "video_id": "v1", "action": "play"}).status_code == 202
    metrics = api.get("/metrics").text
    assert 'clipstream_gateway_rejected_requests_total{reason="unsafe_source"}' in metrics
    assert 'clipstream_gateway_rejected_requests_total{reason="wrong_api_key"}' in metrics


async def test_bad_messages_on_the_bus_are_dead_lettered_and_the_rest_processed(broker, kafka_settings, group_id):
    raw_bad = {
        DeadLetterReason.MALFORMED_JSON: b'{"user_id": "u1", ',
        DeadLetterReason.INVALID_EVENT: json.dumps({k: v for k, v in GOOD.items() if k != "video_id"}).encode(),
        DeadLetterReason.UNKNOWN_SCHEMA_VERSION: json.dumps({**GOOD, "schema_version": 3}).encode(),
        DeadLetterReason.OVERSIZED: json.dumps({**GOOD, "session_id": "x" * TEN_MB}).encode(),
    }
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=16 * 1024 * 1024)
    await producer.start()
    good_ids = []
    try:
        for n, raw in enumerate(raw_bad.values()):
            event = WatchEvent(user_id="u1", video_id=f"v{n}", action="play")
            good_ids.append(event.event_id)
            await producer.send_and_wait(topics.WATCH_EVENTS.name, event.model_dump_json().encode(), key=b"u1")
            await producer.send_and_wait(topics.WATCH_EVENTS.name, raw, key=b"u1")
    finally:
        await producer.stop()

    processed: list[WatchEvent] = []
    letters: list[dict] = []
    bus = make_broker("it-dlq", kafka_settings)

    async def handle(event: WatchEvent) -> None:
        processed.append(event)

    consume(bus, topics.WATCH_EVENTS, handle, service="it-dlq", group_id=group_id, settings=kafka_settings)

    @bus.subscriber(topics.WATCH_EVENTS.dlq, group_id=group_id + "-dlq", auto_offset_reset="earliest",
                    session_timeout_ms=1000, heartbeat_interval_ms=200)
    async def on_dlq(body: dict) -> None:
        letters.append(body)

    await bus.start()
    try:
        await wait_for(lambda: len(processed) == len(good_ids) and len(letters) == len(raw_bad),
                       what="good events processed and bad ones dead-lettered")
    finally:
        await bus.stop()

    assert [e.event_id for e in processed] == good_ids, "every good event, in order, despite the bad ones between"
    by_reason = {l["reason"]: l for l in letters}
    assert set(by_reason) == {r.value for r in raw_bad}
    for reason, raw in raw_bad.items():
        letter = by_reason[reason.value]
        assert letter["source_topic"] == "watch.events" and letter["key"] == "u1" and letter["offset"] >= 0
        assert letter["payload_size"] == len(raw)
        kept = base64.b64decode(letter["payload_b64"])
        assert raw.startswith(kept) and (kept == raw or reason is DeadLetterReason.OVERSIZED)
        assert letter["detail"]
    assert "video_id" in by_reason["invalid_event"]["detail"]
    assert "schema_version 3" in by_reason["unknown_schema_version"]["detail"]
