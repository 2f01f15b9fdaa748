"""The embedded runtime as users run it: `clipstream broker`, a service's ops endpoints."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from contextlib import asynccontextmanager

import httpx
import uvicorn

from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import WatchEvent
from shared.runtime.admin import list_topics, wait_until_ready
from shared.runtime.broker import free_port
from shared.service import build_app
from tests.integration.conftest import wait_for


def test_broker_command_starts_creates_topics_and_stops_cleanly_on_sigterm():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not any("ready on" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert f"127.0.0.1:{port}" in lines[-1], lines
        asyncio.run(wait_until_ready(f"127.0.0.1:{port}", 10))
        names = asyncio.run(list_topics(f"127.0.0.1:{port}"))
        assert set(topics.all_topic_partitions()) <= set(names)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0
    probe = subprocess.run([sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"],
                           capture_output=True)
    assert probe.returncode != 0, "the broker process is gone after SIGTERM"


async def test_consumer_service_serves_health_ready_and_metrics(broker, kafka_settings, group_id):
    bus = make_broker("it-svc", kafka_settings)
    seen: list[WatchEvent] = []

    async def handle(event: WatchEvent) -> None:
        seen.append(event)

    consume(bus, topics.WATCH_EVENTS, handle, service="it-svc", group_id=group_id, settings=kafka_settings)
    app = build_app("it-svc", bus)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, what="uvicorn to start")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/ready")).json() == {"status": "ready"}
            await bus.publish(WatchEvent(user_id="u", video_id="v", action="share").model_dump_json().encode(),
                              topic=topics.WATCH_EVENTS.name, key=b"u")
            await bus.publish(b"garbage", topic=topics.WATCH_EVENTS.name, key=b"u")
            await wait_for(lambda: len(seen) == 1, what="the event")
            text = ""

            async def metrics_show_dlq() -> bool:
                nonlocal text
                text = (await client.get("/metrics")).text
                return 'clipstream_it_svc_dlq_messages_total{reason="malformed_json",topic="watch.events"} 1.0' in text

            for _ in range(100):
                if await metrics_show_dlq():
                    break
                await asyncio.sleep(0.1)
            assert 'clipstream_it_svc_messages_total{outcome="ok",topic="watch.events"} 1.0' in text
            assert 'clipstream_it_svc_dlq_messages_total{reason="malformed_json",topic="watch.events"} 1.0' in text
            assert "clipstream_it_svc_broker_received_messages_total" in text
            assert 'clipstream_it_svc_build_info{service="it-svc",version="0.1.0"} 1.0' in text
    finally:
        server.should_exit = True
        await task


async def test_the_shell_starts_the_broker_inside_the_services_lifespan(kafka_settings):
    """A service's lifespan (models, stores) is entered before its broker starts and left after it stops;
    its running block (background tasks) only while the broker runs."""
    bus = make_broker("it-shell", kafka_settings)
    seen: list[tuple[str, bool]] = []

    @asynccontextmanager
    async def lifespan(app):
        seen.append(("lifespan entered", bus.running))
        yield
        seen.append(("lifespan left", bus.running))

    @asynccontextmanager
    async def running(app):
        seen.append(("running entered", bus.running))
        yield
        seen.append(("running left", bus.running))

    app = build_app("it-shell", bus, lifespan=lifespan, running=running)
    async with app.router.lifespan_context(app):
        seen.append(("serving", bus.running))
    assert seen == [("lifespan entered", False), ("running entered", True), ("serving", True),
                    ("running left", True), ("lifespan left", False)]


# `clipstream demo` runs once in the suite, in tests/integration/test_demo_report.py (its console output,
# --serve and Ctrl-C, and the report in headless Chromium).
