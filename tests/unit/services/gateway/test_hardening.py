"""Issue 14 at the gateway: no input reaches a 500, ids cannot smuggle URL parts, the key is checked
before the body, a per-key rate limit, and the OpenAPI document says what the gateway really does."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from services.gateway.app import create_app
from services.gateway.auth import refuse_exposed_default_key
from shared.settings import FetchSettings, GatewaySettings, GenerationSettings, Settings

KEY = "test-key"
OTHER = "other-key"
WATCH = {"user_id": "u1", "video_id": "v1", "action": "complete", "watch_ms": 1200, "duration_ms": 1500}


def upstream_app() -> FastAPI:
    """A stand-in for the recommender, stylization and generation services: it says what it was asked."""
    app = FastAPI()

    @app.get("/{path:path}")
    async def echo(path: str, request: Request) -> dict:
        return {"raw_path": request.scope["raw_path"].decode(), "path": request.url.path,
                "query": dict(request.query_params)}

    return app


def build(media, **overrides):
    settings = GatewaySettings(**{"api_keys": [SecretStr(OTHER), SecretStr(KEY)],
                                  "max_body_bytes": 64 * 1024, "max_batch": 50, **overrides})
    app = create_app(Settings(gateway=settings, fetch=FetchSettings(media_root=media),
                              generation=GenerationSettings(max_pixels_per_request=64 * 512 * 512)))
    published: list[dict] = []
    broker = app.state.broker
    for name in ("videos.uploaded", "watch.events", "generation.requests", "stylize.requests"):
        @broker.subscriber(name)
        async def on_event(body: dict) -> None:
            published.append(body)
    app.state.upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream_app()), base_url="http://up")
    return app, published


@pytest.fixture
async def gateway(media):
    app, published = build(media)
    async with TestKafkaBroker(app.state.broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers={"X-API-Key": KEY}) as client:
            yield client, published, app


# --- finding 4: reachable 500s ------------------------------------------------------------------------------

ID_ROUTES = ["/v1/feed/{}", "/v1/videos/{}/similar", "/v1/stylizations/{}", "/v1/generations/{}"]


@pytest.mark.parametrize("route", ID_ROUTES)
@pytest.mark.parametrize("raw_id", ["a%01b", "a%7Fb", "a%0Ab", "a%00b", "%20", ".a", "a%3Fk%3D1", "a%23x", "a%25"])
async def test_path_ids_outside_the_identifier_pattern_are_422(gateway, route, raw_id):
    client, _, _ = gateway
    resp = await client.get(route.format(raw_id))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["detail"].startswith("invalid request") and body["errors"][0]["loc"][0] == "path"


@pytest.mark.parametrize("route", ID_ROUTES)
@pytest.mark.parametrize("raw_id", ["a%2Fb", "..", "a/../../metrics"])
async def test_path_ids_with_a_slash_name_no_route(gateway, route, raw_id):
    client, _, _ = gateway
    resp = await client.get(route.format(raw_id))
    assert resp.status_code == 404 and resp.json() == {"detail": "Not Found"}


@pytest.mark.parametrize("source,reason", [
    ("x" * 300 + ".mp4", "File name too long"),
    ("b" * 2000, "File name too long"),
    ("a/" * 1000, "not a file"),
    ("loop/clip.mp4", "cannot be resolved|Too many levels of symbolic links|loop"),
])
async def test_sources_the_file_system_cannot_check_are_422_with_a_reason(gateway, media, source, reason):
    client, published, _ = gateway
    (media / "loop").symlink_to(media / "loop")
    resp = await client.post("/v1/videos", json={"source": source, "creator_id": "c1"})
    assert resp.status_code == 422, resp.text
    import re
    assert re.search(reason, resp.json()["detail"]), resp.json()["detail"]
    assert published == []


@pytest.mark.parametrize("source", ["http://" + "a" * 64 + ".example/v.mp4", "http://[::1/v.mp4", "http://a\x00b/v.mp4"])
async def test_urls_the_resolver_cannot_take_are_422(gateway, source):
    client, _, _ = gateway
    resp = await client.post("/v1/videos", json={"source": source, "creator_id": "c1"})
    assert resp.status_code == 422 and resp.json()["detail"].startswith("source refused"), resp.text


async def test_an_unexpected_exception_is_a_json_500_that_the_request_metric_counts(gateway):
    client, _, app = gateway

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    resp = await client.get("/v1/broken")
    assert resp.status_code == 500 and resp.headers["content-type"] == "application/json"
    assert "internal error" in resp.json()["detail"]
    metrics = (await client.get("/metrics")).text
    assert 'clipstream_gateway_http_requests_total{method="GET",route="/v1/broken",status="500"}' in metrics


# --- finding 5: no query or fragment smuggling --------------------------------------------------------------

async def test_ids_are_quoted_into_the_internal_url(gateway):
    client, _, _ = gateway
    resp = await client.get("/v1/feed/user:ana@x.y", params={"k": 3})
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert seen["raw_path"] == "/v1/feed/user%3Aana%40x.y" and seen["path"] == "/v1/feed/user:ana@x.y"
    assert seen["query"] == {"k": "3"}
    resp = await client.get("/v1/feed/user-ana%3Fk%3D1")  # was: user-ana's feed, with k=1
    assert resp.status_code == 422


# --- finding 8: the key before the body, a per-key rate limit -----------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "guess"}])
@pytest.mark.parametrize("body", [b'{"user_id": ', b"[" * 100_000, json.dumps({"events": [WATCH] * 5000}).encode()])
async def test_the_api_key_is_checked_before_the_body(gateway, headers, body):
    client, published, _ = gateway
    request = client.build_request("POST", "/v1/events/watch/batch", content=body,
                                   headers={"content-type": "application/json"})
    del request.headers["X-API-Key"]
    request.headers.update(headers)
    resp = await client.send(request)
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "ApiKey", resp.text
    assert published == []


async def test_each_key_has_its_own_rate_limit(media):
    app, published = build(media, rate_limit_per_s=0.001, rate_limit_burst=3)
    async with TestKafkaBroker(app.state.broker):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            answers = [(await client.post("/v1/events/watch", json=WATCH, headers={"X-API-Key": KEY})).status_code
                       for _ in range(4)]
            assert answers == [202, 202, 202, 429]
            refused = await client.post("/v1/events/watch", json=WATCH, headers={"X-API-Key": KEY})
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "rate limit" in refused.json()["detail"]
            # another key is not slowed down by the first one's traffic
            assert (await client.post("/v1/events/watch", json=WATCH, headers={"X-API-Key": OTHER})).status_code == 202
            metrics = (await client.get("/metrics")).text
    assert len(published) == 4
    assert 'clipstream_gateway_rejected_requests_total{reason="rate_limited"}' in metrics
    assert 'clipstream_gateway_http_requests_total{method="POST",route="/v1/events/watch",status="429"}' in metrics


@pytest.mark.parametrize("host,keys_env,refused", [
    ("0.0.0.0", None, True), ("10.1.2.3", None, True), ("gateway.internal", None, True), ("0.0.0.0", "", True),
    ("0.0.0.0", "k1,k2", False), ("127.0.0.1", None, False), ("::1", None, False), ("localhost", None, False),
])
def test_without_its_own_keys_the_gateway_only_starts_on_loopback(monkeypatch, host, keys_env, refused):
    monkeypatch.delenv("CLIPSTREAM_GATEWAY_API_KEYS", raising=False)
    if keys_env is not None:
        monkeypatch.setenv("CLIPSTREAM_GATEWAY_API_KEYS", keys_env)
    settings = GatewaySettings(host=host)
    if refused:
        with pytest.raises(SystemExit, match="CLIPSTREAM_GATEWAY_API_KEYS"):
            refuse_exposed_default_key(settings)
    else:
        refuse_exposed_default_key(settings)


# --- finding 9: the contract --------------------------------------------------------------------------------

GENERATE = {"topic": "travel", "kind": "cover", "count": 2, "seed": 7, "size": 256}
STYLIZE = {"video_id": "vid-1", "ops": [{"style": "mosaic", "strength": 0.8}]}


@pytest.mark.parametrize("url,body,where", [
    ("/v1/generations", {**GENERATE, "colour": "red"}, "colour"),
    ("/v1/stylizations", {**STYLIZE, "priority": 1}, "priority"),
    ("/v1/generations", {**GENERATE, "seed": False}, "seed"),
    ("/v1/generations", {**GENERATE, "count": "2"}, "count"),
    ("/v1/generations", {**GENERATE, "size": 256.5}, "size"),
    ("/v1/events/watch", {**WATCH, "ts": 0}, "ts"),
    ("/v1/events/watch", {**WATCH, "watch_ms": True}, "watch_ms"),
    ("/v1/stylizations", {"video_id": "vid-1", "ops": [{"color": {"clahe": 1}}]}, "clahe"),
])
async def test_unknown_fields_and_wrong_json_types_are_refused_not_coerced(gateway, url, body, where):
    client, published, _ = gateway
    resp = await client.post(url, json=body)
    assert resp.status_code == 422, resp.text
    assert where in resp.json()["detail"]
    assert published == []


async def test_an_integral_number_is_an_integer_as_json_schema_says(gateway):
    client, published, _ = gateway
    assert (await client.post("/v1/generations", json={**GENERATE, "size": 256.0, "count": 2.0})).status_code == 202
    assert published[0]["size"] == 256 and published[0]["count"] == 2


async def test_a_batch_holds_each_event_to_the_same_strict_rules(gateway):
    client, published, _ = gateway
    resp = await client.post("/v1/events/watch/batch", json={"events": [WATCH, {**WATCH, "ts": 0},
                                                                        {**WATCH, "watch_ms": "5"}]})
    assert resp.status_code == 202
    assert resp.json()["accepted"] == 1 and [r["index"] for r in resp.json()["rejected"]] == [1, 2]
    assert len(published) == 1


async def test_the_generation_pixel_budget_is_checked_before_the_202(gateway):
    client, published, _ = gateway
    resp = await client.post("/v1/generations", json={**GENERATE, "count": 64, "size": 1024})
    assert resp.status_code == 422 and "pixels" in resp.json()["detail"], resp.text
    resp = await client.post("/v1/generations", json={"topic": "travel", "kind": "clip", "size": 1024,
                                                      "duration_s": 30, "fps": 60})
    assert resp.status_code == 422
    assert published == []
    assert (await client.post("/v1/generations", json=GENERATE)).status_code == 202


@pytest.mark.parametrize("case", ["malformed", "missing", "nested", "path", "query"])
async def test_every_422_has_the_documented_error_body(gateway, case):
    client, _, app = gateway
    if case == "malformed":
        resp = await client.post("/v1/events/watch", content=b"{nope", headers={"content-type": "application/json"})
    elif case == "missing":
        resp = await client.post("/v1/events/watch", json={"user_id": "u1"})
    elif case == "nested":
        resp = await client.post("/v1/events/watch", content=b"[" * 10_000 + b"]" * 10_000,
                                 headers={"content-type": "application/json"})
    elif case == "path":
        resp = await client.get("/v1/generations/a%01b")
    else:
        resp = await client.get("/v1/search", params={"q": "", "k": 0})
    assert resp.status_code == 422, resp.text
    spec = app.openapi()
    route = "/v1/events/watch" if case in ("malformed", "missing", "nested") else None
    if route:
        assert spec["paths"][route]["post"]["responses"]["422"]["content"]["application/json"]["schema"] == \
            {"$ref": "#/components/schemas/Error"}
    from services.gateway.schemas import Error

    error = Error.model_validate(resp.json())
    assert error.detail.startswith("invalid request: ") and error.errors
    assert set(resp.json()) <= {"detail", "errors"}


def test_openapi_lists_every_answer_of_every_route(media):
    app, _ = build(media)
    spec = app.openapi()
    for path, ops in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"401", "413", "422", "429", "503"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path)
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if code in ("429", "503"):
                assert "Retry-After" in op["responses"][code]["headers"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


# --- finding 7: quiet logs during an outage -----------------------------------------------------------------

def test_identical_error_lines_are_let_through_once_per_interval_with_a_count():
    import io
    import logging

    from services.gateway.outage import RepeatFilter

    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RepeatFilter(interval_s=30, clock=lambda: now[0]))
    logger = logging.getLogger("test.repeat")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for second in range(120):  # two minutes of an outage, 100 identical failures a second
            now[0] = float(second)
            for node in range(100):
                logger.error("Unable connect to node with id %s", node)
            logger.info("progress %s", second)  # below WARNING: never held back
        logger.error("another problem")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    unable = [line for line in lines if line.startswith("Unable connect")]
    assert len(unable) == 4  # at 0, 30, 60 and 90 s
    assert unable[0] == "Unable connect to node with id 0"
    assert all(line.endswith("[2999 identical lines suppressed in the last 30 s]") for line in unable[1:])
    assert sum(line.startswith("progress") for line in lines) == 120
    assert lines[-1] == "another problem"


# --- finding 2: time skew ------------------------------------------------------------------------------------

async def test_a_time_far_in_the_future_is_422_and_never_published(gateway):
    client, published, _ = gateway
    resp = await client.post("/v1/events/watch", json={**WATCH, "ts": "9999-12-31T23:59:59Z"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["loc"][-1] == "ts" and "ahead of the wall clock" in resp.json()["errors"][0]["msg"]
    batch = await client.post("/v1/events/watch/batch", json={"events": [WATCH, {**WATCH, "ts": "9999-01-01T00:00:00Z"}]})
    assert batch.status_code == 202 and batch.json()["accepted"] == 1 and len(batch.json()["rejected"]) == 1
    past = await client.post("/v1/events/watch", json={**WATCH, "ts": "2020-01-01T00:00:00Z"})
    assert past.status_code == 202, "a time in the past is history, not an error"
    assert published and not any(str(e.get("ts", "")).startswith("9999") for e in published)
