"""Acceptance: three recommender replicas behind the gateway serve, for every user, the feed one replica holding
every partition serves after the same events, item for item; and feeds stay personal through the rebalance
a fourth replica causes."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from shared import topics
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from tests.integration.conftest import API_KEY, publish
from tests.integration.test_recommender_service import recommender_env
from tests.recsys_data import videos, watch_log

pytestmark = pytest.mark.integration
USERS = 300
EVENTS = 3000
K = 10


def replica_env(broker, root, name: str, port: int, group: str | None = None) -> dict:
    env = recommender_env(broker, root / name)
    env["CLIPSTREAM_RECOMMENDER_ADVERTISED_URL"] = f"http://127.0.0.1:{port}"
    if group:
        env["CLIPSTREAM_RECOMMENDER_GROUP_ID"] = group
    return env


def start_replica(broker, root, name: str, group: str | None = None) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess("recommender", port, env=replica_env(broker, root, name, port, group),
                          log_path=root / f"{name}.log")
    return proc.start(timeout_s=120)


def items(body: dict) -> list[tuple[str, str]]:
    return [(i["video_id"], i["source"]) for i in body["items"]]


def feeds(client: httpx.Client, base: str, users: list[str], headers: dict | None = None) -> dict[str, dict]:
    out = {}
    for user in users:
        resp = client.get(f"{base}/v1/feed/{user}", params={"k": K}, headers=headers or {})
        out[user] = resp.json() if resp.status_code == 200 else {"status": resp.status_code}
    return out


def differences(got: dict[str, dict], want: dict[str, dict]) -> list[str]:
    return [u for u in want if "items" not in got[u] or items(got[u]) != items(want[u])
            or got[u]["cold_start"] != want[u]["cold_start"]]


def converge(read, want_of, what: str, timeout_s: float = 180.0) -> dict:
    """Read until the answers match what ``want_of`` says (replicas catch up at their own pace)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got, want = read(), want_of()
        diff = differences(got, want)
        if not diff:
            return got
        if time.monotonic() > deadline:
            first = diff[0]
            raise AssertionError(f"{what}: {len(diff)} users differ, e.g. {first}: {got[first]} vs {want[first]}")
        time.sleep(1.0)


def test_replicas_behind_the_gateway_serve_what_one_replica_serves_through_a_rebalance(tmp_path):
    vids = videos(per_topic=10)
    log = watch_log(EVENTS, USERS, [v.video_id for v in vids])
    users = sorted({e.user_id for e in log})
    assert len(users) == USERS
    headers = {"X-API-Key": API_KEY}
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, vids, "video_id"))
        replicas = [start_replica(broker, tmp_path, f"replica-{i}") for i in range(3)]
        reference = start_replica(broker, tmp_path, "reference", group="reference")
        gateway = ServiceProcess("gateway", free_port(), log_path=tmp_path / "gateway.log", env={
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY,
            "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(tmp_path), "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": replicas[0].url,
            "CLIPSTREAM_GATEWAY_RATE_LIMIT_PER_S": "0", "CLIPSTREAM_GATEWAY_OWNER_WAIT_S": "5"})
        fourth = None
        try:
            gateway.start()
            asyncio.run(publish(broker.bootstrap, topics.WATCH_EVENTS.name, log, "user_id"))
            with httpx.Client(timeout=30) as client:
                want = lambda: feeds(client, reference.url, users)  # noqa: E731
                routed = lambda: feeds(client, gateway.url, users, headers)  # noqa: E731
                reference_feeds = converge(routed, want, "three replicas vs one")
                personal = [u for u in users if not reference_feeds[u]["cold_start"]]
                assert len(personal) > USERS * 0.9

                # a fourth replica joins: partitions move while feeds are read through the gateway
                during: list[dict] = []
                stop = threading.Event()

                def read_during() -> None:
                    with httpx.Client(timeout=30) as reader:
                        while not stop.is_set():
                            during.append(feeds(reader, gateway.url, personal[::10], headers))

                reader = threading.Thread(target=read_during)
                reader.start()
                try:
                    fourth = start_replica(broker, tmp_path, "replica-3")
                    converge(routed, want, "four replicas vs one")
                finally:
                    stop.set()
                    reader.join()
            answered = [body for round_ in during for body in round_.values()]
            assert answered and all(b.get("status") in (None, 503) for b in answered)
            assert not [b for b in answered if b.get("cold_start")], "a known user was served a cold-start feed"
            assert sum("items" in b for b in answered) > len(answered) / 2
            fourth_metrics = httpx.get(f"{fourth.url}/metrics").text
            assert 'clipstream_recommender_restores_total{source="changelog"}' in fourth_metrics
            restored = [line for line in fourth_metrics.splitlines()
                        if line.startswith('clipstream_recommender_restores_total{source="changelog"}')]
            assert float(restored[0].split()[-1]) >= 1, "the new replica restored its partitions from the changelog"
        finally:
            for proc in [gateway, reference, *replicas, *([fourth] if fourth else [])]:
                proc.stop()
