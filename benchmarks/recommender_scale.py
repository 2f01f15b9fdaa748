"""Recommender scale-out figures, each against a baseline measured in the same run.

    python -m benchmarks.recommender_scale [--users 10000] [--events-per-user 20] [--requests 1000] [--probes 200]

1. Restore per 10k users: one partition's state (``--users`` users, built by ``Recommender.apply`` of
   synthetic watch events, video vectors of the prepared model's size) is written to its changelog on an
   embedded broker through ``KafkaChangelog.write`` (a full snapshot, then ``--deltas`` flushes of
   ``--delta-events`` events each), then restored with ``KafkaChangelog.last`` + ``load`` +
   ``Recommender.install``, against rebuilding it from the source: reading the partition's watch events
   from ``watch.events`` and applying every one with ``Recommender.apply``. Both restored states are
   compared with the state that was written, row for row.
2. Feed latency through the routing layer: two recommender replicas and a gateway; p50/p99 of the same
   feed requests asked directly of the user's owner replica and through the gateway, interleaved.
3. Freshness p99 at a background load (``benchmarks/recommender.py``'s probe) with the changelog on,
   against the same probe with ``CLIPSTREAM_RECOMMENDER_CHANGELOG=false``.

The 1-minute load average is sampled through every part (other work on the machine shows up there).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from aiokafka import AIOKafkaProducer

from benchmarks.common import percentile_ms, write_result
from benchmarks.recommender import (
    clustered,
    make_events,
    produce,
    service_videos,
    through_broker,
)
from services.recommender.changelog import encode_rows, restore
from services.recommender.changelog_io import KafkaChangelog
from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.engine import Recommender
from services.recommender.rows import Rows
from shared import topics
from shared.codec import decode
from shared.events import WatchEvent
from shared.inference import ModelError
from shared.ownership import changelog_topic, partition_for
from shared.replay import Tail
from shared.runtime.admin import ensure_recommender_topics
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import KafkaSettings, ModelSettings, RecommenderSettings
from shared.vector_space import model_space
from shared.vectors import EdgeVectorStore

GROUP = "bench-scale"
FALLBACK_DIM = 512
TOPICS = 10  # video topics; every user prefers one
T0 = datetime(2026, 11, 1, tzinfo=UTC)
ACTIONS = ("impression", "play", "progress", "complete", "like", "share", "skip", "dislike")
ACTION_P = (0.2, 0.15, 0.15, 0.2, 0.12, 0.03, 0.1, 0.05)
API_KEY = "bench-key"
FRESHNESS_GOAL_MS = 100.0


# ---------------------------------------------------------------- pure helpers


def per_10k(seconds: float, users: int) -> float:
    """Seconds for ``users`` users, scaled to 10,000 users."""
    return seconds * 10_000 / users


def partition_users(n: int, partition: int, partitions: int, prefix: str = "u") -> list[str]:
    """The first ``n`` user ids ``<prefix><i>`` that the producers' partitioner puts in ``partition``."""
    out, i = [], 0
    while len(out) < n:
        user = f"{prefix}{i}"
        if partition_for(user, partitions) == partition:
            out.append(user)
        i += 1
    return out


def spread(users: list[str], per_user: int, rng: np.random.Generator) -> list[str]:
    """Each user ``per_user`` times, in a random order (users active at the same time)."""
    order = rng.permutation(np.repeat(np.arange(len(users)), per_user))
    return [users[i] for i in order]


def watch_events(users: list[str], videos: list[str], rng: np.random.Generator, first: int = 0) -> list[WatchEvent]:
    """One event per entry of ``users`` (in that order): each user's favourite topic 80% of the time (video
    ``v<i>`` is in topic ``i % TOPICS``), the action mix of the integration tests' watch log (skips and
    dislikes included), event ids ``e<first + i>`` and times one second apart from ``T0``."""
    n = len(users)
    fav = rng.random(n) < 0.8
    picks = rng.integers(len(videos), size=n)
    actions = rng.choice(len(ACTIONS), size=n, p=ACTION_P)
    watched = rng.integers(0, 10_000, size=n)
    out = []
    for i, user in enumerate(users):
        video = int(picks[i])
        if fav[i]:  # the nearest video of the user's topic
            video = video - video % TOPICS + sum(map(ord, user)) % TOPICS
            video = video if video < len(videos) else video - TOPICS
        out.append(WatchEvent(event_id=f"e{first + i}", user_id=user, video_id=videos[video],
                              action=ACTIONS[int(actions[i])], watch_ms=int(watched[i]), duration_ms=10_000,
                              ts=T0 + timedelta(seconds=first + i)))
    return out


def differs(a: Rows, b: Rows) -> list[str]:
    """Which parts of two partition states differ (empty: the same state, row for row)."""
    out = []
    if sorted(a.users) != sorted(b.users):
        out.append("users")
    if sorted(a.popularity) != sorted(b.popularity):
        out.append("popularity")
    if dict(a.covisit) != dict(b.covisit):
        out.append("covisit")
    if a.ranker != b.ranker:
        out.append("ranker")
    if a.next_offset != b.next_offset:
        out.append("next_offset")
    return out


def feed_routes(metrics_text: str) -> dict[str, float]:
    """The gateway's ``feed_routes`` counters by outcome, from its /metrics text."""
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith("clipstream_gateway_feed_routes_total{"):
            label, value = line.rsplit(" ", 1)
            out[label.split('outcome="', 1)[1].split('"', 1)[0]] = float(value)
    return out


class LoadWatch:
    """The 1-minute load average, sampled every ``every_s`` in a thread while the block runs."""

    def __init__(self, every_s: float = 2.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> LoadWatch:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        s = self.samples or [float("nan")]
        return {"mean": round(float(np.mean(s)), 2), "max": round(float(np.max(s)), 2)}


# ---------------------------------------------------------------- 1. restore per 10k users


def vector_size() -> tuple[int, str | None, str]:
    """(video vector size, model version, where the size comes from)."""
    try:
        space = model_space(ModelSettings())
    except ModelError:
        return FALLBACK_DIM, None, f"{FALLBACK_DIM}: no prepared model found"
    return space.video_dim, space.version, f"the prepared model's ({space.version})"


def restore_figures(users: int, per_user: int, deltas: int, delta_events: int, n_videos: int, console) -> dict:
    dim, version, which = vector_size()
    console.print(f"restore: video vectors of {dim} dimensions, {which}")
    rng = np.random.default_rng(7)
    partition, partitions = 0, topics.WATCH_EVENTS.partitions
    ids = partition_users(users, partition, partitions)
    videos = [f"v{i}" for i in range(n_videos)]
    base = watch_events(spread(ids, per_user, rng), videos, rng)
    later = watch_events([ids[int(i)] for i in rng.integers(users, size=deltas * delta_events)], videos, rng,
                         first=len(base))
    vectors = clustered(n_videos, rng, clusters=TOPICS, dim=dim)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        store = EdgeVectorStore(Path(tmp) / "videos", dim)
        try:
            catalogue = Catalogue(store, None, version)
            catalogue.add_many([(VideoInfo(v, f"t{i % TOPICS}", f"c{i % 300}", (T0 - timedelta(days=2)).timestamp(),
                                           None, ""), vectors[i]) for i, v in enumerate(videos)])
            settings = RecommenderSettings(state_dir=Path(tmp) / "state")
            out = asyncio.run(_restore(broker.bootstrap, settings, catalogue, partition, base, later, delta_events,
                                       console))
        finally:
            store.close()
    return {"vector_dim": dim, "vector_dim_from": which, "users": users, "events_per_user": per_user,
            "videos": n_videos, "partition": partition, **out}


async def _restore(bootstrap: str, settings: RecommenderSettings, catalogue: Catalogue, partition: int,
                   base: list[WatchEvent], later: list[WatchEvent], delta_events: int, console) -> dict:
    topic = topics.WATCH_EVENTS.name
    await ensure_recommender_topics(bootstrap, GROUP, topics.WATCH_EVENTS.partitions)
    with console.status(f"publishing {len(base) + len(later):,} watch events to {topic}[{partition}]"):
        t = time.perf_counter()
        await produce(bootstrap, base + later, topic, "user_id")
        publish_s = time.perf_counter() - t

    # the state as a replica builds it, written to the changelog as its flushes write it
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1 << 20, max_request_size=16 << 20,
                                linger_ms=0, request_timeout_ms=30000)  # as services/recommender/app.py
    await producer.start()
    try:
        source = Recommender(settings, catalogue, topic, shared_stats=True)
        source.install(partition, Rows(next_offset=0))
        with console.status(f"building the state: {len(base):,} events"):
            t = time.perf_counter()
            for event in base:
                source.apply(event, partition)
            build_s = time.perf_counter() - t
        log = KafkaChangelog(producer, bootstrap, changelog_topic(GROUP), "bench-writer", settings.snapshot_min_entries)
        writes: list[dict] = []

        async def flush(next_offset: int, full: bool) -> None:
            """One flush, full or a delta as asked (the layout a restore reads: one snapshot, then deltas);
            whether ``wants_full`` would have made it a full snapshot is recorded beside it."""
            wanted = log.wants_full(partition)
            snap = source.snapshot(partition, next_offset=next_offset, full=full)
            t = time.perf_counter()
            await log.write(partition, snap.rows, snap.full, generation=1)
            writes.append({"full": snap.full, "wanted_full": wanted, "rows": len(snap.rows),
                           "s": time.perf_counter() - t})

        with console.status("writing the full snapshot and the deltas to the changelog"):
            await flush(len(base), full=True)
            full_rows = source.snapshot(partition, full=True).rows  # nothing is dirty: this only reads
            t = time.perf_counter()
            encoded = encode_rows(full_rows)
            encode_s = time.perf_counter() - t
            snapshot_mb = sum(len(k) + len(v) for k, v in encoded) / 2**20
            del encoded, full_rows
            for i in range(0, len(later), delta_events):
                for event in later[i:i + delta_events]:
                    source.apply(event, partition)
                await flush(len(base) + i + len(later[i:i + delta_events]), full=False)
        reference = source.snapshot(partition, full=True).rows
        source.close()
        await log.close()

        # (a) from the changelog
        with console.status("restoring from the changelog"):
            restored_rec = Recommender(settings, catalogue, topic, shared_stats=True)
            reader = KafkaChangelog(producer, bootstrap, changelog_topic(GROUP), "bench-reader",
                                    settings.snapshot_min_entries)
            t0 = time.perf_counter()
            marker, end = await reader.last(partition)
            t1 = time.perf_counter()
            restored = await reader.load(partition, marker, end)
            t2 = time.perf_counter()
            restored_rec.install(partition, restored.rows)
            t3 = time.perf_counter()
            await reader.close()
            changelog_s, last_s, load_s, install_s = t3 - t0, t1 - t0, t2 - t1, t3 - t2
            read_records = end - max(0, marker.base)
            restored_diff = differs(restored_rec.snapshot(partition, full=True).rows, reference)
            restored_rec.close()
            del restored, restored_rec
            # where load's time goes: decoding alone, on the same records fetched again (untimed)
            async with Tail(bootstrap, changelog_topic(GROUP), [partition], {partition: max(0, marker.base)}) as tail:
                records = [r async for rows in tail.batches(follow=False) for r in rows]
            t = time.perf_counter()
            restore(records)
            decode_s = time.perf_counter() - t
            del records

        # (b) from the source topic
        with console.status(f"rebuilding from {topic}"):
            rebuilt = Recommender(settings, catalogue, topic, shared_stats=True)
            max_bytes = KafkaSettings().max_message_bytes
            applied, apply_s = 0, 0.0
            t0 = time.perf_counter()
            rebuilt.install(partition, Rows(next_offset=0))
            async with Tail(bootstrap, topic, [partition]) as tail:
                async for rows in tail.batches(follow=False):
                    for record in rows:
                        event = decode(record.value, WatchEvent, max_bytes)
                        t = time.perf_counter()
                        rebuilt.apply(event, partition)
                        apply_s += time.perf_counter() - t
                        rebuilt.advance(partition, record.offset + 1)
                        applied += 1
            source_s = time.perf_counter() - t0
            rebuilt_diff = differs(rebuilt.snapshot(partition, full=True).rows, reference)
            rebuilt.close()
    finally:
        await producer.stop()
    users = len(reference.users)
    full = [w for w in writes if w["full"]]
    delta = [w for w in writes if not w["full"]]
    return {
        "events": len(base) + len(later), "events_applied_from_source": applied,
        "publish_s": round(publish_s, 2), "build_events_per_s": round(len(base) / build_s, 1),
        "changelog_writes": {"full": len(full), "delta": len(delta),
                             "deltas_wants_full_called_full": sum(w["wanted_full"] for w in delta),
                             "full_snapshot_write_s_per_10k_users": round(per_10k(full[0]["s"], users), 2),
                             "full_snapshot_encode_s_per_10k_users": round(per_10k(encode_s, users), 2),
                             "full_snapshot_mb": round(snapshot_mb, 1),
                             "delta_write_p50_ms": round(percentile_ms([w["s"] for w in delta], 50), 1),
                             "delta_rows_mean": round(float(np.mean([w["rows"] for w in delta])), 1) if delta else 0},
        "changelog_records_read": read_records,
        "changelog_restore_s_per_10k_users": round(per_10k(changelog_s, users), 2),
        "changelog_breakdown_s_per_10k_users": {
            "last": round(per_10k(last_s, users), 2), "load": round(per_10k(load_s, users), 2),
            "load_decode_only": round(per_10k(decode_s, users), 2), "install": round(per_10k(install_s, users), 2)},
        "source_rebuild_s_per_10k_users": round(per_10k(source_s, users), 2),
        "source_breakdown_s_per_10k_users": {"apply": round(per_10k(apply_s, users), 2),
                                             "fetch_and_decode": round(per_10k(source_s - apply_s, users), 2)},
        "source_over_changelog": round(source_s / changelog_s, 2),
        "restored_differs_in": restored_diff, "rebuilt_differs_in": rebuilt_diff,
    }


# ---------------------------------------------------------------- 2. feed latency through the routing layer


def routing_figures(n_users: int, n_events: int, requests: int, k: int, console) -> dict:
    rng = np.random.default_rng(3)
    vids = service_videos(2000, rng)
    events = make_events(n_events, n_users, [v.video_id for v in vids], rng)
    users = sorted({e.user_id for e in events})
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        root = Path(tmp)
        asyncio.run(produce(broker.bootstrap, vids, topics.VIDEOS_EMBEDDED.name, "video_id"))
        procs: list[ServiceProcess] = []
        try:
            with console.status("starting two recommender replicas and a gateway"):
                for i in range(2):
                    port = free_port()
                    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                           "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(root / f"replica-{i}" / "state"),
                           "CLIPSTREAM_QDRANT_DATA_DIR": str(root / f"replica-{i}" / "qdrant"),
                           "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000", "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200",
                           "CLIPSTREAM_RECOMMENDER_ADVERTISED_URL": f"http://127.0.0.1:{port}"}
                    procs.append(ServiceProcess("recommender", port, env=env,
                                                log_path=root / f"replica-{i}.log").start(timeout_s=120))
                replicas = list(procs)
                gateway = ServiceProcess("gateway", free_port(), log_path=root / "gateway.log", env={
                    "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY,
                    "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(root), "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": replicas[0].url,
                    "CLIPSTREAM_GATEWAY_RATE_LIMIT_PER_S": "0", "CLIPSTREAM_GATEWAY_OWNER_WAIT_S": "5"})
                procs.append(gateway.start(timeout_s=120))
            asyncio.run(produce(broker.bootstrap, events, topics.WATCH_EVENTS.name, "user_id"))
            headers = {"X-API-Key": API_KEY}
            with httpx.Client(timeout=10) as client:
                with console.status(f"waiting until every replica serves its users ({len(users)})"):
                    owner = owners(client, [r.url for r in replicas], gateway.url, users, headers, k)
                by_owner = {url: sum(1 for o in owner.values() if o == url) for url in owner.values()}
                before = feed_routes(client.get(f"{gateway.url}/metrics").text)
                picks = [users[int(i)] for i in rng.integers(len(users), size=requests + 50)]
                direct, routed, failed = [], [], {}
                for i, user in enumerate(picks):  # alternating which goes first
                    order = (("direct", f"{owner[user]}/v1/feed/{user}", {}), ("gateway", f"{gateway.url}/v1/feed/{user}",
                                                                             headers))
                    for how, url, hdrs in (order if i % 2 else order[::-1]):
                        t = time.perf_counter()
                        resp = client.get(url, params={"k": k}, headers=hdrs)
                        took = time.perf_counter() - t
                        if resp.status_code != 200:
                            failed[f"{how} {resp.status_code}"] = failed.get(f"{how} {resp.status_code}", 0) + 1
                        if i >= 50 and resp.status_code == 200:  # the first 50 of each warm up
                            (direct if how == "direct" else routed).append(took)
                after = feed_routes(client.get(f"{gateway.url}/metrics").text)
        finally:
            for proc in reversed(procs):
                proc.stop()
    outcomes = {o: int(after.get(o, 0) - before.get(o, 0)) for o in after}
    return {"replicas": 2, "users": len(users), "events": n_events, "users_by_replica": sorted(by_owner.values()),
            "requests": requests, "k": k, "non_200": failed, "gateway_route_outcomes": outcomes,
            "direct_p50_ms": round(percentile_ms(direct, 50), 2), "direct_p99_ms": round(percentile_ms(direct, 99), 2),
            "gateway_p50_ms": round(percentile_ms(routed, 50), 2), "gateway_p99_ms": round(percentile_ms(routed, 99), 2),
            "gateway_over_direct_p50": round(percentile_ms(routed, 50) / percentile_ms(direct, 50), 2),
            "gateway_over_direct_p99": round(percentile_ms(routed, 99) / percentile_ms(direct, 99), 2)}


def owners(client: httpx.Client, replicas: list[str], gateway: str, users: list[str], headers: dict, k: int,
           timeout_s: float = 300.0) -> dict[str, str]:
    """user -> the replica that answers its feed (200, not cold: its events applied; the others say 421), once
    the gateway answers every user too."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        for user in users:
            if user in found:
                continue
            for url in replicas:
                resp = client.get(f"{url}/v1/feed/{user}", params={"k": k})
                if resp.status_code == 200 and not resp.json()["cold_start"]:
                    found[user] = url
                    break
        if len(found) == len(users) and all(
                client.get(f"{gateway}/v1/feed/{u}", params={"k": k}, headers=headers).status_code == 200
                for u in users):
            return found
        time.sleep(1.0)
    raise TimeoutError(f"after {timeout_s:.0f} s, {len(users) - len(found)} of {len(users)} users have no replica "
                       "that serves them")


# ---------------------------------------------------------------- 3. freshness with the changelog on


def freshness_figures(events: int, probes: int, load: int, console) -> dict:
    out = {}
    for name, on in (("changelog_off", "false"), ("changelog_on", "true")):
        with console.status(f"freshness probes, {name.replace('_', ' ')}, {load:,} events/s"), LoadWatch() as watch:
            figures = through_broker(events, probes, load, console, env={"CLIPSTREAM_RECOMMENDER_CHANGELOG": on})
        out[name] = {**figures, "load_average": watch.summary()}
    on_p99, off_p99 = out["changelog_on"]["freshness_p99_ms"], out["changelog_off"]["freshness_p99_ms"]
    return {**out, "goal_ms": FRESHNESS_GOAL_MS, "goal_holds_with_changelog": bool(on_p99 < FRESHNESS_GOAL_MS),
            "p99_on_over_off": round(on_p99 / off_p99, 2)}


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=10_000, help="users in the restored partition")
    p.add_argument("--events-per-user", type=int, default=20)
    p.add_argument("--deltas", type=int, default=20, help="delta flushes written after the full snapshot")
    p.add_argument("--delta-events", type=int, default=200, help="events per delta flush (about 250 ms at 5k/s)")
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--feed-users", type=int, default=500)
    p.add_argument("--feed-events", type=int, default=5000)
    p.add_argument("--requests", type=int, default=1000, help="feed requests each way")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--events", type=int, default=20_000, help="events/s figure of each freshness run")
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--load", type=int, default=5000, help="background events/s during the freshness probes")
    p.add_argument("--skip", action="append", default=[], choices=["restore", "routing", "freshness"])
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    result: dict = {"load_average": {}}
    if "restore" not in args.skip:
        with LoadWatch() as watch:
            result["restore"] = restore_figures(args.users, args.events_per_user, args.deltas, args.delta_events,
                                                args.videos, console)
        result["load_average"]["restore"] = watch.summary()
    if "routing" not in args.skip:
        with LoadWatch() as watch:
            result["routing"] = routing_figures(args.feed_users, args.feed_events, args.requests, args.k, console)
        result["load_average"]["routing"] = watch.summary()
    if "freshness" not in args.skip:
        with LoadWatch() as watch:
            result["freshness"] = freshness_figures(args.events, args.probes, args.load, console)
        result["load_average"]["freshness"] = watch.summary()

    table = Table("figure", "measured", "baseline (same run)", "ratio", title="recommender scale-out")
    if "restore" in result:
        r = result["restore"]
        table.add_row(f"restore of 10k users ({r['vector_dim']}-dim vectors, {r['events_per_user']} events/user)",
                      f"changelog {r['changelog_restore_s_per_10k_users']:.2f} s",
                      f"source {r['source_rebuild_s_per_10k_users']:.2f} s", f"{r['source_over_changelog']:.1f}x faster")
    if "routing" in result:
        r = result["routing"]
        table.add_row("feed p50 (2 replicas)", f"gateway {r['gateway_p50_ms']:.1f} ms",
                      f"owner {r['direct_p50_ms']:.1f} ms", f"{r['gateway_over_direct_p50']:.2f}x")
        table.add_row("feed p99 (2 replicas)", f"gateway {r['gateway_p99_ms']:.1f} ms",
                      f"owner {r['direct_p99_ms']:.1f} ms", f"{r['gateway_over_direct_p99']:.2f}x")
    if "freshness" in result:
        r = result["freshness"]
        on, off = r["changelog_on"], r["changelog_off"]
        table.add_row(f"freshness p99 at {args.load:,} events/s (goal < {FRESHNESS_GOAL_MS:.0f} ms)",
                      f"changelog on {on['freshness_p99_ms']:.1f} ms", f"off {off['freshness_p99_ms']:.1f} ms",
                      f"{r['p99_on_over_off']:.2f}x")
        table.add_row("events/s applied and stored", f"changelog on {on['recommender_events_per_s']:,.0f}",
                      f"off {off['recommender_events_per_s']:,.0f}",
                      f"{on['recommender_events_per_s'] / off['recommender_events_per_s']:.2f}x")
    console.print(table)
    console.print("1-minute load average (mean / max) per part: "
                  + ", ".join(f"{k} {v['mean']} / {v['max']}" for k, v in result["load_average"].items()))
    if "restore" in result:
        r = result["restore"]
        w = r["changelog_writes"]
        console.print(f"changelog written: {w['full']} full snapshot ({w['full_snapshot_mb']} MB), {w['delta']} deltas "
                      f"(wants_full would have made {w['deltas_wants_full_called_full']} of them full snapshots)")
        console.print(f"restore breakdown per 10k users: changelog {r['changelog_breakdown_s_per_10k_users']}, "
                      f"source {r['source_breakdown_s_per_10k_users']}; restored state differs in "
                      f"{r['restored_differs_in'] or 'nothing'}, rebuilt in {r['rebuilt_differs_in'] or 'nothing'}")
    if "freshness" in result:
        console.print(f"freshness goal (p99 < {FRESHNESS_GOAL_MS:.0f} ms) with the changelog on: "
                      f"{'holds' if result['freshness']['goal_holds_with_changelog'] else 'does NOT hold'}; "
                      f"changelog flushes during that run: {result['freshness']['changelog_on']['changelog_flushes']}")
    name = "recommender_scale" + "".join(f"_no_{s}" for s in sorted(set(args.skip)))
    path = write_result(name, result)
    console.print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
