"""Gateway -> broker -> consumer, against raw aiokafka produce/consume, in the same run.

Throughput: N watch events sent in batches (HTTP batch of 500 through the gateway, versus
aiokafka send + gather), consumed by a consumer group (ClipStream's dead-lettering consumer,
versus a bare aiokafka group consumer). Latency: single events at a fixed concurrency (one
HTTP POST each, versus one ``send_and_wait`` each), measured from send to the consumer's handler.

    python -m benchmarks.gateway_throughput [--events 20000] [--latency-events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import percentile_ms, write_result
from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import WatchEvent
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import KafkaSettings

KEY = "bench-key"
BATCH = 500
CONCURRENCY = 16


def make_events(n: int, start: int = 0) -> list[dict]:
    return [{"user_id": f"user-{i % 1000}", "video_id": f"video-{i % 500}", "action": "progress", "watch_ms": i % 9000}
            for i in range(start, start + n)]


class Sink:
    """Collects end-to-end latencies (send time travels in the event's ``ts`` / a header-free field)."""

    def __init__(self, expected: int) -> None:
        self.reset(expected)

    def reset(self, expected: int) -> None:
        self.expected = expected
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.first = self.last = 0.0

    def record(self, sent_at: float) -> None:
        now = time.time()
        if not self.latencies:
            self.first = now
        self.latencies.append(now - sent_at)
        self.last = now
        if len(self.latencies) >= self.expected:
            self.done.set()


async def clipstream_consumer(settings: KafkaSettings, sink: Sink):
    bus = make_broker("bench", settings)

    async def handle(event: WatchEvent) -> None:
        sink.record(event.ts.timestamp())

    sub = consume(bus, topics.WATCH_EVENTS, handle, service="bench",
                  group_id=f"bench-{uuid.uuid4().hex[:8]}", settings=settings)
    await bus.start()
    await settled(sub.consumer)
    return bus.stop


async def settled(consumer) -> None:
    """Wait until the group has assigned every partition and positions are known."""
    while len(consumer.assignment()) < topics.WATCH_EVENTS.partitions:
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.position(tp)


async def raw_consumer(settings: KafkaSettings, topic: str, sink: Sink):
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers,
                                group_id=f"raw-{uuid.uuid4().hex[:8]}", auto_offset_reset="latest",
                                session_timeout_ms=settings.session_timeout_ms,
                                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                                fetch_max_wait_ms=settings.fetch_max_wait_ms)
    await consumer.start()
    await settled(consumer)

    async def loop() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=settings.max_poll_records)
            for records in batch.values():
                for r in records:
                    sink.record(json.loads(r.value)["sent"])

    task = asyncio.create_task(loop())

    async def stop() -> None:
        task.cancel()
        await consumer.stop()

    return stop


async def run_gateway_batches(url: str, n: int, sink: Sink) -> float:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=60) as api:
        started = time.time()
        sem = asyncio.Semaphore(4)

        async def post(chunk: list[dict]) -> None:
            async with sem:
                now = time.time()
                body = {"events": [{**e, "ts": now} for e in chunk]}
                (await api.post("/v1/events/watch/batch", json=body)).raise_for_status()

        events = make_events(n)
        await asyncio.gather(*(post(events[i:i + BATCH]) for i in range(0, n, BATCH)))
        await asyncio.wait_for(sink.done.wait(), 600)
        return time.time() - started


async def run_gateway_singles(url: str, n: int, sink: Sink) -> float:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=60) as api:
        started = time.time()
        queue = iter(make_events(n))

        async def worker() -> None:
            for e in queue:
                (await api.post("/v1/events/watch", json={**e, "ts": time.time()})).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        await asyncio.wait_for(sink.done.wait(), 600)
        return time.time() - started


async def run_raw(bootstrap: str, topic: str, n: int, sink: Sink, batched: bool) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        started = time.time()
        events = make_events(n)
        if batched:
            futures = [await producer.send(topic, json.dumps({**e, "sent": time.time()}).encode(),
                                           key=e["user_id"].encode()) for e in events]
            await asyncio.gather(*futures)
        else:
            queue = iter(events)

            async def worker() -> None:
                for e in queue:
                    await producer.send_and_wait(topic, json.dumps({**e, "sent": time.time()}).encode(),
                                                 key=e["user_id"].encode())

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        await asyncio.wait_for(sink.done.wait(), 600)
        return time.time() - started
    finally:
        await producer.stop()


WARMUP = 200


async def measure(name: str, n: int, start_consumer, run) -> dict:
    """Start the consumer, warm the path up with WARMUP events, then time ``n`` events."""
    sink = Sink(WARMUP)
    stop = await start_consumer(sink)
    await run(WARMUP, sink)
    sink.reset(n)
    elapsed = await run(n, sink)
    await stop()
    return {"system": name, "events": n, "seconds": round(elapsed, 3), "events_per_s": round(n / elapsed, 1),
            "p50_ms": round(percentile_ms(sink.latencies, 50), 2), "p99_ms": round(percentile_ms(sink.latencies, 99), 2)}


async def bench(bootstrap: str, gateway_url: str, events: int, latency_events: int) -> list[dict]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=1000, heartbeat_interval_ms=200,
                             auto_offset_reset="latest")
    rows = []
    raw_topic = "bench.raw"
    for mode, n in (("throughput", events), ("latency", latency_events)):
        batched = mode == "throughput"
        gw_run = run_gateway_batches if batched else run_gateway_singles
        raw = await measure(f"raw aiokafka ({mode})", n, lambda s: raw_consumer(settings, raw_topic, s),
                            lambda k, s: run_raw(bootstrap, raw_topic, k, s, batched))
        ours = await measure(f"gateway->broker->consumer ({mode})", n, lambda s: clipstream_consumer(settings, s),
                             lambda k, s: gw_run(gateway_url, k, s))
        rows += [{"mode": mode, **raw}, {"mode": mode, **ours}]
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--latency-events", type=int, default=2_000)
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    with EmbeddedBroker() as broker:
        asyncio.run(_create_raw_topic(broker.bootstrap))
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_API_KEYS": KEY,
               "CLIPSTREAM_GATEWAY_MEDIA_ROOT": "var/bench-media"}
        with ServiceProcess("gateway", free_port(), env=env) as gateway:
            with console.status("measuring gateway->broker->consumer against raw aiokafka"):
                rows = asyncio.run(bench(broker.bootstrap, gateway.url, args.events, args.latency_events))
    table = Table(title="gateway -> broker -> consumer vs raw aiokafka (same run, same broker)")
    for col in ("mode", "system", "events", "events/s", "p50 ms", "p99 ms"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["mode"], r["system"], str(r["events"]), f"{r['events_per_s']:,.0f}", f"{r['p50_ms']:.1f}",
                      f"{r['p99_ms']:.1f}")
    console.print(table)
    ratios = {}
    for mode in ("throughput", "latency"):
        raw, ours = [r for r in rows if r["mode"] == mode]
        ratios[mode] = {"throughput_ratio": round(ours["events_per_s"] / raw["events_per_s"], 3),
                        "p99_ratio": round(ours["p99_ms"] / raw["p99_ms"], 3)}
        console.print(f"{mode}: ClipStream path at {ratios[mode]['throughput_ratio']:.2f}x raw aiokafka throughput, "
                      f"p99 latency {ratios[mode]['p99_ratio']:.2f}x raw")
    path = write_result("gateway_throughput", {"rows": rows, "ratios": ratios, "batch": BATCH, "concurrency": CONCURRENCY})
    console.print(f"wrote {path}")
    return ratios


async def _create_raw_topic(bootstrap: str) -> None:
    from shared.runtime.admin import ensure_topics

    await ensure_topics(bootstrap, {"bench.raw": topics.WATCH_EVENTS.partitions})


if __name__ == "__main__":
    main()
