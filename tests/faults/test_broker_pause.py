"""The broker is paused for 30 s and resumed while the gateway takes watch events. A client that
retries a refused event with the same event_id (the documented rule) ends with every event applied
exactly once by the recommender, and no request waits past the gateway's stated bound (issue 14,
acceptance 3)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx

from shared.runtime.broker import free_port
from shared.runtime.processes import ServiceProcess
from tests.faults.metrics_text import scrape, value
from tests.faults.test_poison_records import eventually
from tests.integration.conftest import API_KEY

PAUSE_S = 30.0
EVENTS = 240
# a publish is bounded by CLIPSTREAM_KAFKA_REQUEST_TIMEOUT_MS (2 s by default); a client that gives up
# after 15 s sees every answer or fails this test (aiokafka's own default held requests for 40 s)
CLIENT_TIMEOUT_S = 15.0


async def send_until_accepted(client: httpx.AsyncClient, i: int, outcomes: dict) -> None:
    body = {"user_id": f"user-{i % 6}", "video_id": f"v{i % 9}", "action": "play", "event_id": f"pause-{i}"}
    while True:
        resp = await client.post("/v1/events/watch", json=body)  # raises on a hang past CLIENT_TIMEOUT_S
        outcomes.setdefault(resp.status_code, 0)
        outcomes[resp.status_code] += 1
        if resp.status_code == 202:
            return
        assert resp.status_code == 503, resp.text
        await asyncio.sleep(min(float(resp.headers["retry-after"]), 2.0))  # retry, same event_id


async def test_a_paused_broker_loses_and_doubles_nothing(broker, tmp_path):
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "6000",
           "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "1000", "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY,
           "CLIPSTREAM_GATEWAY_RATE_LIMIT_PER_S": "0",
           "CLIPSTREAM_QDRANT_DATA_DIR": str(tmp_path / "qdrant"),
           "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(tmp_path / "state")}
    gateway = ServiceProcess("gateway", free_port(), env=env, log_path=tmp_path / "gateway.log")
    recommender = ServiceProcess("recommender", free_port(), env=env, log_path=tmp_path / "recommender.log")
    outcomes: dict[int, int] = {}
    with gateway, recommender:
        async with httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": API_KEY},
                                     timeout=CLIENT_TIMEOUT_S) as client:
            async def pause_then_resume() -> None:
                await asyncio.sleep(2.0)  # some events go through before the pause
                os.kill(broker._proc.pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(PAUSE_S)
                finally:
                    os.kill(broker._proc.pid, signal.SIGCONT)

            async def steady_clients() -> None:
                for start in range(0, EVENTS, 8):  # 8 clients at a time, spread over the pause
                    await asyncio.gather(*(send_until_accepted(client, i, outcomes)
                                           for i in range(start, min(start + 8, EVENTS))))
                    await asyncio.sleep(0.15)

            started = time.monotonic()
            await asyncio.gather(pause_then_resume(), steady_clients())
            assert time.monotonic() - started >= PAUSE_S, "the clients ran through the pause"

        assert outcomes.get(202) == EVENTS, outcomes
        assert outcomes.get(503, 0) > 0, "the pause was seen by clients"

        async def all_applied():
            samples = scrape(recommender.url)
            applied = value(samples, "clipstream_recommender_events_applied_total", result="applied")
            return applied if applied >= EVENTS else None

        await eventually(all_applied, timeout_s=120)
        await asyncio.sleep(2.0)  # anything delivered late would be counted by now
        samples = scrape(recommender.url)
        assert value(samples, "clipstream_recommender_events_applied_total", result="applied") == EVENTS
