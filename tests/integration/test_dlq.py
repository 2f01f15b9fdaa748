"""``clipstream dlq list|replay`` on the real embedded broker, against a real consumer (shared/consumer.py):
a record the handler failed on the first time is dead-lettered, listed, replayed after the "fix" and
applied, carrying the reason and its replay count in Kafka headers; a record that fails every time
is refused once it has been replayed the maximum number of times."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer

from cli.dlq import COUNT_HEADER, ORIGIN_HEADER, REASON_HEADER, header
from cli.main import main
from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import WatchEvent
from shared.replay import records_to_end
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
DLQ = topics.WATCH_EVENTS.dlq


async def produce(bootstrap: str, rows: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in rows:
            await producer.send_and_wait(topics.WATCH_EVENTS.name, value, key=key)
    finally:
        await producer.stop()


async def records(bootstrap: str, topic: str) -> list:
    return [r async for r in records_to_end(bootstrap, topic)]


async def cli(capsys, *args: str) -> tuple[int, str]:
    """``clipstream ARGS`` with the real parser, in a thread (it runs its own event loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    return code, capsys.readouterr().out


async def test_dead_letters_are_listed_and_replayed_to_their_topic_with_reason_and_count(broker, kafka_settings,
                                                                                        group_id, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the table, as on a wide terminal
    bootstrap = broker.bootstrap
    applied: list[str] = []
    outage = {"on": True}

    async def handle(event: WatchEvent) -> None:
        if event.event_id == "during-outage" and outage["on"]:
            raise RuntimeError("the feature store did not answer")
        applied.append(event.event_id)

    consumer = make_broker("it-dlq", kafka_settings)
    consume(consumer, topics.WATCH_EVENTS, handle, service="it-dlq", group_id=group_id,
            settings=kafka_settings)
    await consumer.start()
    try:
        flaky = WatchEvent(event_id="during-outage", user_id="user-1", video_id="v1", action="like")
        after = WatchEvent(event_id="after", user_id="user-1", video_id="v2", action="play")
        flaky_bytes = flaky.model_dump_json().encode()
        await produce(bootstrap, [(b"user-1", flaky_bytes), (b"user-2", b"{not json"),
                                  (b"user-1", after.model_dump_json().encode())])
        await wait_for(lambda: "after" in applied, 30, "the consumer to go past the bad records")
        for _ in range(100):
            if len(await records(bootstrap, DLQ)) >= 2:
                break
            await asyncio.sleep(0.1)

        # list: both letters, with reason, detail and where they came from
        code, out = await cli(capsys, "dlq", "list", "watch.events", "--json", "--bootstrap", bootstrap)
        assert code == 0
        listed = {row["reason"]: row for row in map(json.loads, out.splitlines())}
        assert set(listed) == {"processing_error", "malformed_json"}, out
        failed = listed["processing_error"]
        assert "RuntimeError: the feature store did not answer" in failed["detail"]
        assert failed["source_topic"] == "watch.events" and failed["key"] == "user-1"
        assert failed["replays_before"] == 0 and failed["replayable"] and failed["decodes_now"] == "ok"
        assert listed["malformed_json"]["decodes_now"].startswith("malformed_json")
        code, out = await cli(capsys, "dlq", "list", "watch.events.dlq", "--limit", "1", "--bootstrap", bootstrap)
        assert code == 0 and "processing_error" in out and "the feature store" in out

        # a dry run sends nothing
        before = len(await records(bootstrap, topics.WATCH_EVENTS.name))
        code, out = await cli(capsys, "dlq", "replay", "watch.events", "--reason", "processing_error", "--dry-run",
                              "--bootstrap", bootstrap)
        assert code == 0 and "would replay 1, refused 0" in out
        assert len(await records(bootstrap, topics.WATCH_EVENTS.name)) == before

        # the outage is over: replay it; the consumer applies it this time
        outage["on"] = False
        code, out = await cli(capsys, "dlq", "replay", "watch.events", "--reason", "processing_error",
                              "--bootstrap", bootstrap)
        assert code == 0 and "replayed 1, refused 0" in out, out
        await wait_for(lambda: "during-outage" in applied, 30, "the replayed event to be applied")
        replayed = [r for r in await records(bootstrap, topics.WATCH_EVENTS.name) if header(r.headers, COUNT_HEADER)]
        assert len(replayed) == 1
        record = replayed[0]
        assert record.value == flaky_bytes and record.key == b"user-1"  # the original bytes and key
        assert header(record.headers, REASON_HEADER) == "processing_error"
        assert header(record.headers, COUNT_HEADER) == "1"
        assert header(record.headers, ORIGIN_HEADER) == f"{DLQ}:0:{failed['dlq_offset']}"

        # a record that fails every time: replayed once, dead-lettered again with its count, then refused
        code, out = await cli(capsys, "dlq", "replay", "watch.events", "--reason", "malformed_json",
                              "--max-replays", "1", "--bootstrap", bootstrap)
        assert code == 0 and "replayed 1, refused 0" in out, out
        for _ in range(100):
            letters = [json.loads(r.value) for r in await records(bootstrap, DLQ)]
            if len(letters) >= 3:
                break
            await asyncio.sleep(0.1)
        code, out = await cli(capsys, "dlq", "list", "watch.events", "--reason", "malformed_json", "--json",
                              "--bootstrap", bootstrap)
        again = [json.loads(line) for line in out.splitlines()]
        assert [row["replays_before"] for row in again] == [0, 1], again
        code, out = await cli(capsys, "dlq", "replay", "watch.events", "--offset", str(again[1]["dlq_offset"]),
                              "--max-replays", "1", "--bootstrap", bootstrap)
        assert code == 1 and "replayed 1 times already (max 1)" in out and "replayed 0, refused 1" in out, out
        assert applied.count("during-outage") == 1
    finally:
        await consumer.stop()
