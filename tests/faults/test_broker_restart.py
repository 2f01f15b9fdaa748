"""The broker is killed and comes back with an empty log (memory storage), the harness re-creating
the topics: the services notice (counted, one ERROR), start again at the new log's beginning, keep
their state, and apply what is produced after; nothing hangs (issue 14, finding 7)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx

from shared import topics
from shared.events import GenerationRequested, WatchEvent
from shared.replay import read_to_end
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from tests.faults.metrics_text import scrape, value
from tests.faults.test_poison_records import eventually
from tests.integration.conftest import publish


def watch_events(prefix: str, n: int) -> list[WatchEvent]:
    now = datetime.now(UTC)
    return [WatchEvent(user_id=f"user-{i % 3}", video_id=f"v{i % 4}", action="play", event_id=f"{prefix}-{i}", ts=now)
            for i in range(n)]


async def completed(bootstrap: str, ids: set[str]) -> set[str] | None:
    seen = {json.loads(v)["request_id"] async for v in read_to_end(bootstrap, topics.GENERATION_COMPLETED.name)}
    return ids if ids <= seen else None


async def ready(proc) -> bool | None:
    try:
        return True if httpx.get(f"{proc.url}/ready", timeout=5).status_code == 200 else None
    except httpx.HTTPError:
        return None


def applied(proc) -> float:
    return value(scrape(proc.url), "clipstream_recommender_events_applied_total", result="applied")


async def test_a_broker_that_lost_its_log_is_noticed_and_consuming_goes_on(tmp_path):
    broker = EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log")
    await asyncio.to_thread(broker.start)  # it runs its own event loop to create the topics
    common = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
              "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200", "CLIPSTREAM_QDRANT_DATA_DIR": str(tmp_path / "qdrant")}
    recommender = ServiceProcess("recommender", free_port(), log_path=tmp_path / "recommender.log", env={
        **common, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(tmp_path / "state")})
    generation = ServiceProcess("generation", free_port(), log_path=tmp_path / "generation.log", env={
        **common, "CLIPSTREAM_GENERATION_OUTPUT_DIR": str(tmp_path / "generated")})
    try:
        with recommender, generation:
            await publish(broker.bootstrap, topics.WATCH_EVENTS.name, watch_events("before", 30), "user_id")
            await publish(broker.bootstrap, topics.GENERATION_REQUESTS.name,
                          [GenerationRequested(request_id=f"before-{i}", topic="sports", size=64) for i in range(3)],
                          "request_id")
            await eventually(lambda: _at_least(applied(recommender), 30))
            await eventually(lambda: completed(broker.bootstrap, {f"before-{i}" for i in range(3)}))

            broker.stop()  # the log is gone with the process
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.start)  # same port, empty log, topics re-created

            await publish(broker.bootstrap, topics.WATCH_EVENTS.name, watch_events("after", 12), "user_id")
            await publish(broker.bootstrap, topics.GENERATION_REQUESTS.name,
                          [GenerationRequested(request_id=f"after-{i}", topic="sports", size=64) for i in range(2)],
                          "request_id")
            await eventually(lambda: _at_least(applied(recommender), 42), timeout_s=120)
            await eventually(lambda: completed(broker.bootstrap, {"after-0", "after-1"}), timeout_s=120)
            assert applied(recommender) == 42, "the state is kept and every new event counts once"
            noticed = value(scrape(recommender.url), "clipstream_recommender_log_truncations_total",
                            topic=topics.WATCH_EVENTS.name)
            assert noticed >= 1
            assert "past the log's end" in (tmp_path / "recommender.log").read_text()
            assert await eventually(lambda: ready(recommender)) and await eventually(lambda: ready(generation))
    finally:
        broker.stop()


async def _at_least(got: float, wanted: float) -> float | None:
    return got if got >= wanted else None
