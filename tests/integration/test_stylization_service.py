"""The stylization service and the gateway as real processes on the real embedded broker: a request
becomes a playable mp4 of the same duration with the input's audio and a stylize.completed event;
a repeated request does no work twice; every kind of bad input is answered and dead-lettered."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time

import av
import httpx
import pytest

from shared import topics
from shared.events import StylizeRequested
from shared.media import probe
from shared.replay import read_to_end
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import MediaSettings, StylizationSettings
from tests import media_files
from tests.integration.conftest import publish
from tests.integration.test_encoder_service import collect

pytestmark = pytest.mark.integration
KEY = "stylize-key"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("stylization")
    media, luts = root / "media", root / "luts"
    media.mkdir()
    shutil.copytree(StylizationSettings().lut_dir, luts, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (luts / "broken.cube").write_text("TITLE \"broken\"\nLUT_3D_SIZE 2\n0 0 0\n1 1\n")
    with EmbeddedBroker(log_path=root / "broker.log") as broker:
        common = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
                  "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200"}
        port = free_port()
        stylization = ServiceProcess("stylization", port, log_path=root / "stylization.log", env={
            **common, "CLIPSTREAM_FETCH_MEDIA_ROOT": str(media), "CLIPSTREAM_STYLIZATION_OUTPUT_DIR": str(root / "out"),
            "CLIPSTREAM_STYLIZATION_LUT_DIR": str(luts), "CLIPSTREAM_STYLIZATION_MAX_DURATION_S": "5",
            "CLIPSTREAM_STYLIZATION_PROGRESS_EVERY_S": "0.05"})
        gateway = ServiceProcess("gateway", free_port(), log_path=root / "gateway.log", env={
            **common, "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(media), "CLIPSTREAM_GATEWAY_API_KEYS": KEY,
            "CLIPSTREAM_GATEWAY_STYLIZATION_URL": f"http://127.0.0.1:{port}"})
        with stylization, gateway:
            yield {"root": root, "media": media, "broker": broker, "gateway": gateway, "stylization": stylization}


async def completions(bootstrap: str, request_id: str, final: int = 1, timeout_s: float = 180) -> list[dict]:
    """Every stylize.completed event of one request, once ``final`` of them are not 'running'."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = [e for e in [json.loads(v) async for v in read_to_end(bootstrap, topics.STYLIZE_COMPLETED.name)]
                if e["request_id"] == request_id]
        if sum(e["status"] != "running" for e in seen) >= final:
            return seen
        assert time.monotonic() < deadline, f"no result for {request_id} after {timeout_s} s: {seen}"
        await asyncio.sleep(0.3)


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


async def test_a_request_yields_a_playable_video_with_the_inputs_audio(env):
    src = media_files.good_clip(env["media"], 2, seconds=3.0, seed=4)
    body = {"request_id": "req-ok", "uri": src.name,
            "ops": [{"style": "mosaic", "strength": 0.8}, {"color": {"saturation": 1.1}}, {"lut": "teal_orange"}]}
    async with httpx.AsyncClient(base_url=env["gateway"].url, headers={"x-api-key": KEY}, timeout=30) as client:
        accepted = await client.post("/v1/stylizations", json=body)
        assert accepted.status_code == 202, accepted.text
        events = await completions(env["broker"].bootstrap, "req-ok")
        done = events[-1]
        assert done["status"] == "ok", done
        assert any(e["status"] == "running" and 0 < e["progress"] < 1 for e in events)  # progress was reported
        out = done["output"]
        before, after = probe(src, MediaSettings()), probe(out, MediaSettings())
        assert abs(after.duration_s - before.duration_s) <= 1 / before.fps + 1e-6
        assert (after.width, after.height, after.codec, after.has_audio) == (before.width, before.height, "h264", True)
        assert audio_packets(out) == audio_packets(src)
        status = (await client.get("/v1/stylizations/req-ok")).json()
        # clients see the path relative to the output folder, never the server's absolute path
        assert status["status"] == "ok" and status["output"] == "req-ok.mp4" and out.endswith("/out/req-ok.mp4")
        listing = (await client.get("/v1/styles")).json()
        assert "mosaic" in listing["styles"] and "teal_orange" in listing["luts"] and listing["looks"]

        # the same request again: answered from its record, the output is not rewritten
        mtime = (env["root"] / "out" / "req-ok.mp4").stat().st_mtime_ns
        await publish(env["broker"].bootstrap, topics.STYLIZE_REQUESTS.name,
                      [StylizeRequested.model_validate(body)], "request_id")
        events = await completions(env["broker"].bootstrap, "req-ok", final=2)
        assert [e["status"] for e in events if e["status"] != "running"] == ["ok", "ok"]
        assert (env["root"] / "out" / "req-ok.mp4").stat().st_mtime_ns == mtime


BAD = {
    "unknown style": ({"uri": "clip.mp4", "ops": [{"style": "no-such-style"}]}, "unknown_style"),
    "malformed LUT": ({"uri": "clip.mp4", "ops": [{"lut": "broken"}]}, "bad_lut"),
    "unsafe LUT path": ({"uri": "clip.mp4", "ops": [{"lut": "../../etc/passwd"}]}, "bad_lut"),
    "corrupt video": ({"uri": "truncated.mp4", "ops": [{"color": {"saturation": 1.2}}]}, "decode_error|not_a_video"),
    "over the duration limit": ({"uri": "long.mp4", "ops": [{"color": {"saturation": 1.2}}]}, "too_long"),
    "two hours, no duration in the header": ({"uri": "no_duration.mkv", "ops": [{"color": {"saturation": 1.2}}]},
                                             "too_long"),
    "unsafe path": ({"uri": "../../etc/passwd", "ops": [{"color": {"saturation": 1.2}}]}, "unsafe"),
    "unknown video id": ({"video_id": "never-uploaded", "ops": [{"style": "mosaic"}]}, "unknown_video"),
}


async def test_bad_requests_are_answered_and_dead_lettered_with_a_reason(env):
    media = env["media"]
    shutil.copy(media_files.good_clip(media, 0, seconds=1.0), media / "clip.mp4")
    media_files.truncated(media)
    shutil.copy(media_files.good_clip(media, 1, seconds=6.0), media / "long.mp4")
    media_files.no_duration(media, minutes=120)
    requests = [StylizeRequested.model_validate({"request_id": f"bad-{i}", **body}) for i, (body, _) in enumerate(BAD.values())]
    await publish(env["broker"].bootstrap, topics.STYLIZE_REQUESTS.name, requests, "request_id")
    await publish(env["broker"].bootstrap, topics.STYLIZE_REQUESTS.name,
                  [json.dumps({"schema_version": 1, "request_id": "bad-strength", "uri": "clip.mp4",
                               "ops": [{"style": "mosaic", "strength": 1.5}]}).encode()])
    letters = await collect(env["broker"].bootstrap, topics.STYLIZE_REQUESTS.dlq, len(BAD) + 1)
    by_id = {json.loads(base64.b64decode(letter["payload_b64"]))["request_id"]: letter for letter in letters}
    for i, (name, (_, reason)) in enumerate(BAD.items()):
        letter = by_id[f"bad-{i}"]
        assert letter["reason"] == "rejected" and any(r in letter["detail"] for r in reason.split("|")), (name, letter)
        done = [e for e in await completions(env["broker"].bootstrap, f"bad-{i}") if e["status"] != "running"]
        assert done[-1]["status"] == "failed" and done[-1]["error"], name
    no_duration = by_id[f"bad-{list(BAD).index('two hours, no duration in the header')}"]
    assert "stylization limit of 5 s" in no_duration["detail"], no_duration  # counted by the frames decoded
    assert by_id["bad-strength"]["reason"] == "invalid_event" and "strength" in by_id["bad-strength"]["detail"]
    # and the service is still consuming: a good request after the bad ones succeeds
    await publish(env["broker"].bootstrap, topics.STYLIZE_REQUESTS.name, [StylizeRequested.model_validate(
        {"request_id": "after-bad", "uri": "clip.mp4", "ops": [{"color": {"saturation": 1.2}}]})], "request_id")
    assert (await completions(env["broker"].bootstrap, "after-bad"))[-1]["status"] == "ok"


async def test_the_gateway_refuses_unsafe_sources_and_out_of_range_parameters(env):
    async with httpx.AsyncClient(base_url=env["gateway"].url, headers={"x-api-key": KEY}) as client:
        unsafe = await client.post("/v1/stylizations", json={"uri": "../../etc/passwd", "ops": [{"style": "mosaic"}]})
        assert unsafe.status_code == 422 and "source refused" in unsafe.text
        strength = await client.post("/v1/stylizations", json={"uri": "clip.mp4", "ops": [{"style": "mosaic", "strength": 2}]})
        assert strength.status_code == 422 and "strength" in strength.text
        neither = await client.post("/v1/stylizations", json={"ops": [{"style": "mosaic"}]})
        assert neither.status_code == 422 and "exactly one of video_id or uri" in neither.text
        no_key = await client.post("/v1/stylizations", json={"uri": "clip.mp4", "ops": [{"style": "mosaic"}]},
                                   headers={"x-api-key": "wrong"})
        assert no_key.status_code == 401
