"""Feed requests go to the recommender replica that serves the user's partition (services/gateway/routing.py),
as the memberships table says (services/gateway/owners.py, shared/ownership.py).

The replicas here are small real FastAPI apps served in-process (httpx.ASGITransport); a replica that is
down is a free local port nobody listens on, and a hanging one a local TCP server that never answers."""

from __future__ import annotations

import json

import asyncio
import random
import string
import time

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from pydantic import SecretStr

from services.gateway.app import create_app
from services.gateway.owners import apply_claims
from services.gateway.routing import OUTCOMES, route_feed
from shared import topics
from shared.ownership import Claim, Owners, members_topic, partition_for
from shared.runtime.broker import free_port
from shared.settings import FetchSettings, GatewaySettings, Settings

PARTITIONS = topics.WATCH_EVENTS.partitions
KEY = "test-key"


# --- the partition of a user: the producers' partitioner --------------------------------------------------------

def java_partition(key: bytes, partitions: int) -> int:
    """The Java client's default partitioner for a keyed record: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_aiokafkas_murmur2_is_the_java_clients():
    # Kafka's own test vectors for org.apache.kafka.common.utils.Utils.murmur2 (UtilsTest.testMurmur2), as int32
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
               b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}
    for key, java in vectors.items():
        assert murmur2(key) == java & 0xFFFFFFFF, key


def test_partition_for_is_the_producers_partition():
    rng = random.Random(7)
    keys = [f"user-{i}" for i in range(200)] + [
        "".join(rng.choice(string.ascii_letters + string.digits + "_.:@-") for _ in range(rng.randint(1, 64)))
        for _ in range(200)] + ["user:ana@x.y", "é-ü", "u1"]
    partitioner = DefaultPartitioner()
    for n in (1, 2, 6, 7, 12):
        every = list(range(n))
        for key in keys:
            expected = java_partition(key.encode(), n)
            assert partition_for(key, n) == expected == partitioner(key.encode(), every, every), (key, n)
    assert partition_for("user-1", 6) == java_partition(b"user-1", 6)
    assert len({partition_for(k, PARTITIONS) for k in keys}) == PARTITIONS  # every partition gets users


# --- the table ----------------------------------------------------------------------------------------------------

def claim(partition: int, generation: int, url: str | None, replica: str = "r1") -> Claim:
    return Claim(partition=partition, generation=generation, url=url, replica=replica)


def test_the_highest_generation_wins_and_a_release_empties_the_partition():
    owners = Owners()
    assert owners.without_owner(PARTITIONS) == []  # nothing claimed yet: one recommender, no routing
    assert owners.update(claim(0, 1, "http://r1", "r1"))
    assert owners.update(claim(0, 2, "http://r2", "r2"))
    assert not owners.update(claim(0, 1, "http://r1", "r1"))  # late claim of an older generation
    assert owners.owner(0) == "http://r2"
    assert owners.without_owner(PARTITIONS) == [1, 2, 3, 4, 5]
    assert owners.update(claim(0, 2, None, "r2"))  # r2 lets it go in generation 2
    assert owners.owner(0) is None and 0 in owners.without_owner(PARTITIONS)
    assert not owners.update(claim(0, 2, "http://r2", "r2"))  # its own claim read after its release
    assert owners.owner(0) is None
    assert owners.update(claim(0, 3, "http://r1", "r1"))
    assert not owners.update(claim(0, 2, None, "r2"))  # an older release after a newer claim is ignored
    assert owners.owner(0) == "http://r1" and owners.urls() == ["http://r1"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_claims_are_read_into_the_table_and_bad_records_skipped_and_counted():
    owners = Owners()
    invalid_before = sample("clipstream_gateway_invalid_claims_total")
    good = [claim(p, 1, f"http://r{p % 2}", f"r{p % 2}").model_dump_json().encode() for p in range(PARTITIONS - 1)]
    bad = [None, b"", b"not json", b'{"partition": 1}', claim(9, 1, "http://x").model_dump_json().encode()[:-1],
           b'{"partition": 0, "generation": 5, "url": "http://evil", "replica": "r9", "extra": 1}',
           *(json.dumps({"partition": 0, "generation": 6, "url": url, "replica": "r9"}).encode()
             for url in ("file:///etc/passwd", "ftp://r0", "http://", "http://user:pw@r0", "http://r0?x=1",
                         "http://r0:port", "javascript:alert(1)"))]
    assert apply_claims(owners, [*good[:2], *bad, *good[2:]], PARTITIONS) == len(bad)
    assert sample("clipstream_gateway_invalid_claims_total") - invalid_before == len(bad)
    assert owners.owner(0) == "http://r0" and owners.owner(1) == "http://r1"  # the extra-field record was refused
    assert sample("clipstream_gateway_partitions_without_owner_count") == 1  # the last partition: nobody claimed it
    apply_claims(owners, [claim(0, 1, None, "r0").model_dump_json().encode()], PARTITIONS)
    assert sample("clipstream_gateway_partitions_without_owner_count") == 2


def test_the_memberships_topic_is_named_after_the_group():
    assert members_topic(GatewaySettings().recommender_group) == "clipstream-recommender.members"


# --- routing ------------------------------------------------------------------------------------------------------

def replica(name: str, serves: set[int]) -> FastAPI:
    """A recommender replica that serves ``serves`` (mutable: a rebalance) and answers 421 for other users."""
    app = FastAPI()
    app.state.asked = 0

    @app.get("/v1/feed/{user}")
    async def feed(user: str, k: int = 20):
        app.state.asked += 1
        partition = partition_for(user, PARTITIONS)
        if partition not in serves:
            return JSONResponse({"detail": f"partition {partition} is not served here", "partition": partition},
                                status_code=421)
        if user == "broken":
            return JSONResponse({"detail": "boom"}, status_code=500)
        return {"replica": name, "user": user, "k": k}

    @app.get("/v1/videos/{video}/similar")
    async def similar(video: str):  # any replica answers
        return {"replica": name, "video": video}

    return app


def user_in(partition: int) -> str:
    return next(u for u in (f"user-{i}" for i in range(10_000)) if partition_for(u, PARTITIONS) == partition)


class Clock:
    """Time that passes only when the router sleeps; ``at`` runs a change of the table at a given time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.events: list[tuple[float, object]] = []

    def __call__(self) -> float:
        return self.now

    def at(self, when: float, change) -> None:
        self.events.append((when, change))

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds
        for when, change in [e for e in self.events if e[0] <= self.now]:
            self.events.remove((when, change))
            change()


@pytest.fixture
def cluster():
    """Two replicas, r1 serving partitions 0-2 and r2 serving 3-5, and a client that reaches both (and real ports)."""
    serves = {"r1": {0, 1, 2}, "r2": {3, 4, 5}}
    apps = {name: replica(name, s) for name, s in serves.items()}
    client = httpx.AsyncClient(mounts={f"http://{name}": httpx.ASGITransport(app=app) for name, app in apps.items()})
    owners = Owners()
    for name, parts in serves.items():
        for p in parts:
            owners.update(claim(p, 1, f"http://{name}", name))
    return client, owners, apps, serves


async def route(client, owners, user, clock, wait_s=2.0, fallback_url="http://r1", timeout_s=1.0):
    return await route_feed(client, owners, partition_for(user, PARTITIONS), f"/v1/feed/{user}", {"k": 3},
                            fallback_url=fallback_url, wait_s=wait_s, timeout_s=timeout_s, clock=clock,
                            sleep=clock.sleep)


async def test_the_owner_answers_at_the_first_try(cluster):
    client, owners, apps, _ = cluster
    clock = Clock()
    for p in range(PARTITIONS):
        routed = await route(client, owners, user_in(p), clock)
        assert routed.outcome == "owner" and routed.response.status_code == 200
        assert routed.response.json() == {"replica": "r1" if p < 3 else "r2", "user": user_in(p), "k": 3}
    assert clock.slept == [] and apps["r1"].state.asked == apps["r2"].state.asked == 3


async def test_a_421_is_retried_until_the_new_owner_is_known(cluster):
    client, owners, apps, serves = cluster
    clock = Clock()
    user = user_in(0)
    serves["r1"].discard(0)  # rebalance: r1 gave partition 0 up; r2 took it but its claim is read 0.3 s later
    serves["r2"].add(0)
    clock.at(0.3, lambda: owners.update(claim(0, 2, "http://r2", "r2")))
    routed = await route(client, owners, user, clock)
    assert routed.outcome == "rerouted" and routed.response.json()["replica"] == "r2"
    assert all(0.05 <= s <= 0.1 for s in clock.slept) and 0.3 <= clock.now < 0.4
    assert apps["r1"].state.asked == len(clock.slept)  # every 421 was followed by one wait, then a fresh look


async def test_nobody_owns_the_partition_then_no_owner_after_the_wait(cluster):
    client, owners, apps, _ = cluster
    clock = Clock()
    owners.update(claim(4, 1, None, "r2"))  # released, nobody has claimed it since
    routed = await route(client, owners, user_in(4), clock, wait_s=1.5)
    assert routed.outcome == "no_owner" and routed.response is None
    assert "no replica has claimed it" in routed.error
    assert clock.now == pytest.approx(1.5) and max(clock.slept) <= 0.1
    assert apps["r2"].state.asked == 0  # nobody to ask: the table is re-read, nothing is sent


async def test_a_replica_that_is_down_is_retried_then_the_next_owner_answers(cluster):
    client, owners, _, _ = cluster
    down = f"http://127.0.0.1:{free_port()}"
    owners.update(claim(5, 2, down, "r3"))  # r3 claimed partition 5 and died without releasing it
    clock = Clock()
    routed = await route(client, owners, user_in(5), clock, wait_s=0.5)
    assert routed.outcome == "no_owner" and "did not answer: ConnectError" in routed.error and routed.url == down
    assert "127.0.0.1" not in routed.error  # the error goes to the client: no internal address in it
    clock = Clock()
    clock.at(0.2, lambda: owners.update(claim(5, 3, "http://r2", "r2")))  # the group moved it back to r2
    routed = await route(client, owners, user_in(5), clock, wait_s=0.5)
    assert routed.outcome == "rerouted" and routed.response.json()["replica"] == "r2"


async def test_without_any_claim_the_request_goes_to_the_fallback_url(cluster):
    client, _, _, serves = cluster
    owners, clock = Owners(), Clock()
    routed = await route(client, owners, user_in(1), clock, fallback_url="http://r1")
    assert routed.outcome == "fallback" and routed.response.json()["replica"] == "r1"
    down = f"http://127.0.0.1:{free_port()}"
    routed = await route(client, owners, user_in(1), clock, fallback_url=down)
    assert routed.outcome == "fallback" and routed.response is None and routed.error == "ConnectError"
    assert clock.slept == []  # one recommender of an older build: its failure is the answer, at once
    # a replica of this build behind recommender_url says 421 until the claims are read: that is waited for
    clock.at(0.2, lambda: [owners.update(claim(p, 1, f"http://{n}", n)) for n, s in serves.items() for p in s])
    routed = await route(client, owners, user_in(4), clock, fallback_url="http://r1")
    assert routed.outcome == "rerouted" and routed.response.json()["replica"] == "r2"


async def test_a_hanging_owner_costs_at_most_the_wait_plus_one_upstream_timeout():
    async def never_answer(reader, writer):
        await asyncio.sleep(30)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    owners = Owners()
    for p in range(PARTITIONS):
        owners.update(claim(p, 1, f"http://127.0.0.1:{port}", "slow"))
    try:
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            routed = await route_feed(client, owners, 0, "/v1/feed/u", {}, fallback_url="http://unused",
                                      wait_s=0.3, timeout_s=0.2)
            took = time.monotonic() - started
    finally:
        server.close()
    assert routed.outcome == "no_owner" and "ReadTimeout" in routed.error
    assert 0.3 <= took < 0.3 + 0.2 + 0.25, took


# --- the gateway's route ------------------------------------------------------------------------------------------

@pytest.fixture
def gateway(cluster, media):
    client, owners, _, _ = cluster
    settings = GatewaySettings(api_keys=[SecretStr(KEY)], recommender_url="http://r1", owner_wait_s=0.3)
    app = create_app(Settings(gateway=settings, fetch=FetchSettings(media_root=media)))
    app.state.upstream = client
    app.state.owners = owners
    return app


def counted() -> dict[str, float]:
    return {o: sample("clipstream_gateway_feed_routes_total", outcome=o) for o in OUTCOMES}


async def test_the_feed_route_asks_the_owner_and_says_503_with_retry_after_when_there_is_none(gateway):
    app = gateway
    owners: Owners = app.state.owners
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"X-API-Key": KEY}) as gw:
        metrics = (await gw.get("/metrics")).text
        for outcome in OUTCOMES:  # every series exists before the first request
            assert f'clipstream_gateway_feed_routes_total{{outcome="{outcome}"}}' in metrics
        assert "clipstream_gateway_partitions_without_owner_count" in metrics
        before = counted()
        user = user_in(4)
        resp = await gw.get(f"/v1/feed/{user}", params={"k": 2})
        assert resp.status_code == 200 and resp.json() == {"replica": "r2", "user": user, "k": 2}

        apply_claims(owners, [claim(4, 2, None, "r2").model_dump_json().encode()], PARTITIONS)
        started = time.monotonic()
        resp = await gw.get(f"/v1/feed/{user}")
        assert 0.3 <= time.monotonic() - started < 1.0
        assert resp.status_code == 503 and int(resp.headers["retry-after"]) >= 1
        assert resp.json()["detail"].startswith(
            "partition 4 has no serving recommender replica (rebalance or replica down)"), resp.json()
        assert "clipstream_gateway_partitions_without_owner_count 1.0" in (await gw.get("/metrics")).text

        resp = await gw.get("/v1/feed/broken")  # the owner's own failure is a 502, as for any upstream
        assert resp.status_code == 502 and "recommender answered HTTP 500" in resp.json()["detail"]
        resp = await gw.get("/v1/videos/v1/similar")  # similar and search go to recommender_url (r1) as before
        assert resp.status_code == 200 and resp.json() == {"replica": "r1", "video": "v1"}
    after = counted()
    assert {o: after[o] - before[o] for o in OUTCOMES} == {"owner": 2, "rerouted": 0, "no_owner": 1, "fallback": 0}


async def test_the_feed_route_without_claims_is_todays_forward(gateway):
    app = gateway
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"X-API-Key": KEY}) as gw:
        app.state.owners = Owners()
        before = counted()
        resp = await gw.get(f"/v1/feed/{user_in(0)}")
        assert resp.status_code == 200 and resp.json()["replica"] == "r1"
        down = f"http://127.0.0.1:{free_port()}"
        app.state.settings = app.state.settings.model_copy(update={"recommender_url": down})
        resp = await gw.get(f"/v1/feed/{user_in(0)}")
        assert resp.status_code == 503 and resp.json()["detail"] == "recommender unavailable: ConnectError"
        assert int(resp.headers["retry-after"]) >= 1
    after = counted()
    assert after["fallback"] - before["fallback"] == 2 and after["owner"] == before["owner"]
