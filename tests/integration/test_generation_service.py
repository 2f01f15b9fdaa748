"""The generation service and the gateway as real processes on the real embedded broker: a request
produces its artefacts and a generation.completed event; a repeated request_id does no work twice;
the same seed gives the same bytes; bad requests are answered and dead-lettered with a reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from shared import topics
from shared.events import GenerationRequested
from shared.media import probe
from shared.replay import read_to_end
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import MediaSettings
from tests.integration.conftest import publish
from tests.integration.test_encoder_service import collect

pytestmark = pytest.mark.integration
KEY = "generation-key"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("generation")
    with EmbeddedBroker(log_path=root / "broker.log") as broker:
        common = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
                  "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200"}
        port = free_port()
        generation = ServiceProcess("generation", port, log_path=root / "generation.log", env={
            **common, "CLIPSTREAM_GENERATION_OUTPUT_DIR": str(root / "out")})
        gateway = ServiceProcess("gateway", free_port(), log_path=root / "gateway.log", env={
            **common, "CLIPSTREAM_GATEWAY_API_KEYS": KEY, "CLIPSTREAM_GATEWAY_GENERATION_URL": f"http://127.0.0.1:{port}"})
        with generation, gateway:
            yield {"root": root, "broker": broker, "gateway": gateway}


async def results(bootstrap: str, request_id: str, count: int = 1, timeout_s: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = [e for e in [json.loads(v) async for v in read_to_end(bootstrap, topics.GENERATION_COMPLETED.name)]
                if e["request_id"] == request_id]
        if len(seen) >= count:
            return seen
        assert time.monotonic() < deadline, f"no result for {request_id} after {timeout_s} s"
        await asyncio.sleep(0.2)


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def test_covers_and_clips_are_produced_once_and_reproducibly(env):
    bootstrap = env["broker"].bootstrap
    async with httpx.AsyncClient(base_url=env["gateway"].url, headers={"x-api-key": KEY}, timeout=30) as client:
        known = (await client.get("/v1/topics")).json()["topics"]
        assert "sports" in known
        for body in ({"request_id": "covers-a", "topic": "sports", "kind": "cover", "count": 3, "seed": 7, "size": 256},
                     {"request_id": "covers-b", "topic": "sports", "kind": "cover", "count": 3, "seed": 7, "size": 256},
                     {"request_id": "clip-a", "topic": "food", "kind": "clip", "seed": 3, "size": 128,
                      "duration_s": 2.0, "fps": 12}):
            assert (await client.post("/v1/generations", json=body)).status_code == 202
        a, b, clip = [(await results(bootstrap, r))[0] for r in ("covers-a", "covers-b", "clip-a")]
        assert a["status"] == b["status"] == clip["status"] == "ok"
        assert len(a["artefacts"]) == 3 and all(Path(p).suffix == ".jpg" for p in a["artefacts"])
        assert [digest(p) for p in a["artefacts"]] == [digest(p) for p in b["artefacts"]]  # same seed, same bytes
        assert len({digest(p) for p in a["artefacts"]}) == 3  # different latents, different covers
        info = probe(clip["artefacts"][0], MediaSettings())
        assert (info.width, info.height, info.codec) == (128, 128, "h264") and abs(info.duration_s - 2.0) < 0.1
        status = (await client.get("/v1/generations/clip-a")).json()
        assert status["status"] == "ok"
        # clients see paths relative to the output folder, never the server's absolute paths
        out = (env["root"] / "out").resolve()
        assert status["artefacts"] == [Path(p).relative_to(out).as_posix() for p in clip["artefacts"]] == ["clip-a/clip.mp4"]

    # the same request_id again: answered from its record, nothing regenerated
    mtimes = [Path(p).stat().st_mtime_ns for p in a["artefacts"]]
    await publish(bootstrap, topics.GENERATION_REQUESTS.name, [GenerationRequested(
        request_id="covers-a", topic="sports", kind="cover", count=3, seed=7, size=256)], "request_id")
    again = await results(bootstrap, "covers-a", count=2)
    assert again[1]["artefacts"] == a["artefacts"] and again[1]["status"] == "ok"
    assert [Path(p).stat().st_mtime_ns for p in a["artefacts"]] == mtimes


async def test_bad_requests_are_answered_and_dead_lettered(env):
    bootstrap = env["broker"].bootstrap
    await publish(bootstrap, topics.GENERATION_REQUESTS.name, [
        GenerationRequested(request_id="bad-topic", topic="cooking", kind="cover"),
        GenerationRequested(request_id="bad-big", topic="sports", kind="clip", size=1024, duration_s=30, fps=60),
    ], "request_id")
    await publish(bootstrap, topics.GENERATION_REQUESTS.name, [
        json.dumps({"schema_version": 1, "request_id": "bad-seed", "topic": "sports", "seed": -1}).encode(),
        json.dumps({"schema_version": 1, "request_id": "bad-count", "topic": "sports", "count": 1000}).encode(),
        b"{not json",
    ])
    letters = await collect(bootstrap, topics.GENERATION_REQUESTS.dlq, 5)
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == ["invalid_event", "invalid_event", "malformed_json", "rejected", "rejected"]
    details = " ".join(letter["detail"] for letter in letters)
    assert "valid topics: " in details and "sports" in details and "pixels" in details
    assert "seed" in details and "count" in details
    failed = (await results(bootstrap, "bad-topic"))[0]
    assert failed["status"] == "failed" and "valid topics" in failed["error"]
    async with httpx.AsyncClient(base_url=env["gateway"].url, headers={"x-api-key": KEY}) as client:
        for body, field in (({"topic": "sports", "seed": -5}, "seed"), ({"topic": "sports", "count": 65}, "count"),
                            ({"topic": "sports", "size": 4096}, "size"), ({"topic": "sports", "duration_s": 99}, "duration_s")):
            response = await client.post("/v1/generations", json=body)
            assert response.status_code == 422 and field in response.text
