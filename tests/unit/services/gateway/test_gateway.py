"""Gateway routes against FastStream's in-memory TestKafkaBroker (no real broker needed)."""

import json

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from services.gateway.app import create_app
from shared.settings import FetchSettings, GatewaySettings, Settings

KEY = "test-key"


@pytest.fixture
async def gateway(media):
    settings = GatewaySettings(api_keys=[SecretStr("other"), SecretStr(KEY)], max_body_bytes=64 * 1024, max_batch=50)
    app = create_app(Settings(gateway=settings, fetch=FetchSettings(media_root=media)))
    published: dict[str, list[dict]] = {"videos.uploaded": [], "watch.events": []}
    broker = app.state.broker

    @broker.subscriber("videos.uploaded")
    async def on_upload(body: dict) -> None:
        published["videos.uploaded"].append(body)

    @broker.subscriber("watch.events")
    async def on_watch(body: dict) -> None:
        published["watch.events"].append(body)

    async with TestKafkaBroker(broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers={"X-API-Key": KEY}) as client:
            yield client, published


WATCH = {"user_id": "u1", "video_id": "v1", "action": "complete", "watch_ms": 1200, "duration_ms": 1500}


async def test_register_video_from_media_root(gateway):
    client, published = gateway
    resp = await client.post("/v1/videos", json={"video_id": "vid-1", "source": "clip.mp4", "title": "T",
                                                 "tags": ["a"], "topic": "sports", "creator_id": "c1"})
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"id": "vid-1", "topic": "videos.uploaded", "status": "accepted"}
    [event] = published["videos.uploaded"]
    assert event["video_id"] == "vid-1" and event["schema_version"] == 1 and event["topic"] == "sports"


async def test_single_watch_event(gateway):
    client, published = gateway
    resp = await client.post("/v1/events/watch", json=WATCH)
    assert resp.status_code == 202
    [event] = published["watch.events"]
    assert event["event_id"] == resp.json()["id"] and event["action"] == "complete"


async def test_batch_keeps_valid_events_and_lists_invalid_ones(gateway):
    client, published = gateway
    batch = [WATCH, {**WATCH, "action": "teleport"}, {**WATCH, "user_id": "u2"}, {"user_id": "u3"}]
    resp = await client.post("/v1/events/watch/batch", json={"events": batch})
    assert resp.status_code == 202
    body = resp.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert "action" in body["rejected"][0]["error"]
    assert [e["user_id"] for e in published["watch.events"]] == ["u1", "u2"]


async def test_batch_over_the_limit_is_refused(gateway):
    client, published = gateway
    resp = await client.post("/v1/events/watch/batch", json={"events": [WATCH] * 51})
    assert resp.status_code == 413 and "limit of 50" in resp.json()["detail"]
    assert published["watch.events"] == []


@pytest.mark.parametrize("headers,message", [({}, "missing API key"), ({"X-API-Key": "wrong"}, "invalid API key"),
                                             ({"X-API-Key": ""}, "missing API key")])
async def test_api_key_is_required(gateway, headers, message):
    client, published = gateway
    request = client.build_request("POST", "/v1/events/watch", json=WATCH)
    del request.headers["X-API-Key"]
    request.headers.update(headers)
    resp = await client.send(request)
    assert resp.status_code == 401 and resp.json()["detail"].startswith(message)
    assert published["watch.events"] == []


@pytest.mark.parametrize("source,message", [
    ("../../etc/passwd", "outside the media root"), ("/etc/passwd", "outside the media root"),
    ("missing.mp4", "not a file"), ("http://127.0.0.1:8000/x.mp4", "non-public"),
    ("http://169.254.169.254/latest", "non-public"), ("http://10.0.0.5/v.mp4", "non-public"),
    ("file:///etc/passwd", "scheme"),
])
async def test_unsafe_sources_are_refused(gateway, source, message):
    client, published = gateway
    resp = await client.post("/v1/videos", json={"source": source, "creator_id": "c1"})
    assert resp.status_code == 422 and message in resp.json()["detail"]
    assert published["videos.uploaded"] == []


async def test_malformed_and_incomplete_bodies(gateway):
    client, _ = gateway
    resp = await client.post("/v1/events/watch", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "JSON" in resp.json()["detail"]
    resp = await client.post("/v1/events/watch", json={"user_id": "u1", "action": "play"})
    assert resp.status_code == 422 and "video_id" in resp.json()["detail"]
    resp = await client.post("/v1/events/watch", json={**WATCH, "unknown": 1})
    assert resp.status_code == 422 and "unknown" in resp.json()["detail"]


async def test_oversized_bodies_are_refused_declared_or_streamed(gateway):
    client, published = gateway
    big = json.dumps({"events": [WATCH] * 2000}).encode()
    resp = await client.post("/v1/events/watch/batch", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "larger than" in resp.json()["detail"]

    async def chunks():  # no content-length: the limit is enforced while reading
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    resp = await client.post("/v1/events/watch/batch", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert published["watch.events"] == []


async def test_ops_endpoints_and_openapi(gateway):
    client, _ = gateway
    assert (await client.get("/health")).json() == {"status": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/videos", "/v1/events/watch", "/v1/events/watch/batch"} <= set(spec["paths"])
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    await client.post("/v1/events/watch", json=WATCH)
    metrics = (await client.get("/metrics")).text
    assert 'clipstream_gateway_http_requests_total{method="POST",route="/v1/events/watch",status="202"}' in metrics
    assert "clipstream_gateway_published_messages_total" in metrics
