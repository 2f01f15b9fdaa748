"""Recommender figures, each against a baseline measured in the same run.

    python -m benchmarks.recommender [--videos 100000] [--users 10000] [--events 50000]

1. Feed latency at scale (embedded Qdrant with HNSW): p50/p99 of the whole feed pipeline, and of
   the retrieval alone, against a brute-force numpy cosine ranking over the same vectors.
2. Memory per 10k users (Python allocations while their state is built, tracemalloc).
3. Events/s through the real broker: the recommender process applying and storing events, against
   a bare aiokafka consumer that only parses them; ``--warm-events N``: timed after N more that the service
   applies first (a matured state; written to ``recommender_broker_only_matured.json``).
4. Freshness p99 (watch event published -> the feed reflects it) under a background load.
5. ``--apply-only``: the engine's apply path in-process (no broker, no storage), with online learning on
   its default share against the same events with learning off, and a digest of the state it ends with
   (an optimisation of the path must leave it unchanged); then learning on with a flush's snapshot (the
   changed rows and users, taken on the consumer's thread) every ``FLUSH_EVERY`` events; and (``--mature-warm``)
   learning on and off once the state has matured, after 150,000 of the broker figure's events.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import multiprocessing
import tracemalloc
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.progress import track

from benchmarks.common import percentile_ms, write_result
from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.engine import Recommender
from shared import topics
from shared.events import VideoEmbedded, WatchEvent
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.runtime.heap import settle_heap
from shared.settings import ModelSettings, RecommenderSettings
from shared.vector_space import model_space
from shared.vectors import EdgeVectorStore

DIM = 512
FLUSH_EVERY = 2500  # events between two flushes in --apply-only's flushing pass (0.25 s at 10,000 events/s)
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
APPLY_LAG = "clipstream_recommender_apply_lag_seconds"  # the service's histogram: record timestamp to applied


def clustered(n: int, rng: np.random.Generator, clusters: int = 50, dim: int = DIM) -> np.ndarray:
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    v = centres[rng.integers(clusters, size=n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def feed_latency(n_videos: int, n_users: int, queries: int, console) -> dict:
    rng = np.random.default_rng(0)
    vecs = clustered(n_videos, rng)
    ids = [f"v{i}" for i in range(n_videos)]
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "videos", DIM)
        cat = Catalogue(store)
        t = time.perf_counter()
        for start in range(0, n_videos, 5000):
            cat.add_many([(VideoInfo(ids[i], f"topic{i % 20}", f"c{i % 3000}", NOW.timestamp() - 86400 * 5, None, ""),
                           vecs[i]) for i in range(start, min(n_videos, start + 5000))])
        upsert_s = time.perf_counter() - t
        with console.status(f"building the HNSW index over {n_videos:,} vectors"):
            t = time.perf_counter()
            store.optimize()
            index_s = time.perf_counter() - t
        rec = Recommender(RecommenderSettings(state_dir=Path(tmp) / "state"), cat, "bench")
        rec.assign(0)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for u in range(n_users):
            for j in range(5):
                v = ids[int(rng.integers(n_videos))]
                rec.apply(WatchEvent(user_id=f"u{u}", video_id=v, action="like" if j % 2 else "complete",
                                     watch_ms=9000, duration_ms=10000, ts=NOW + timedelta(seconds=u * 5 + j)), 0)
        mem_per_10k = (tracemalloc.get_traced_memory()[0] - before) / 2**20 / n_users * 10000
        tracemalloc.stop()
        settle_heap()  # as the service does once its catalogue and partitions are loaded
        users = [f"u{int(u)}" for u in rng.integers(n_users, size=queries)]
        for u in users[:20]:
            rec.feed(u, 20, now=NOW.timestamp())  # warm up
        matrix = np.stack([cat.vectors[i] for i in ids])
        queries_ = [(u, rec.user(u)) for u in users]
        # each method in a loop of its own, so one's cache footprint (the 200 MB matrix) does not
        # land in another's figures
        feed_s = timed(lambda u, st: rec.feed(u, 20, now=NOW.timestamp()), queries_)
        ann_s = timed(lambda u, st: cat.search(st.long / np.linalg.norm(st.long), 100, st.seen), queries_)

        def brute(u, st) -> None:
            scores = matrix @ (st.long / np.linalg.norm(st.long))
            scores[[int(s[1:]) for s in st.seen]] = -np.inf
            top = np.argpartition(-scores, 100)[:100]
            top[np.argsort(-scores[top])]

        brute_s = timed(brute, queries_)
        rec.close()
        store.close()
    return {"videos": n_videos, "users": n_users, "queries": queries, "upsert_s": round(upsert_s, 2),
            "hnsw_build_s": round(index_s, 1),
            "feed_p50_ms": round(percentile_ms(feed_s, 50), 2), "feed_p99_ms": round(percentile_ms(feed_s, 99), 2),
            "ann_p50_ms": round(percentile_ms(ann_s, 50), 2), "ann_p99_ms": round(percentile_ms(ann_s, 99), 2),
            "numpy_bruteforce_p50_ms": round(percentile_ms(brute_s, 50), 2),
            "numpy_bruteforce_p99_ms": round(percentile_ms(brute_s, 99), 2),
            "ann_vs_bruteforce_p99": round(percentile_ms(ann_s, 99) / percentile_ms(brute_s, 99), 3),
            "memory_mb_per_10k_users": round(mem_per_10k, 1)}


def timed(fn, args: list[tuple]) -> list[float]:
    out = []
    for a in args:
        t = time.perf_counter()
        fn(*a)
        out.append(time.perf_counter() - t)
    return out


def make_events(n: int, users: int, videos: list[str], rng) -> list[WatchEvent]:
    return [WatchEvent(user_id=f"u{int(rng.integers(users))}", video_id=videos[int(rng.integers(len(videos)))],
                       action="complete", watch_ms=9000, duration_ms=10000) for _ in range(n)]


async def produce(bootstrap: str, events: list, topic: str, key: str) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        futures = [await p.send(topic, e.model_dump_json().encode(), key=str(getattr(e, key)).encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await p.stop()


async def raw_consume(bootstrap: str, n: int) -> float:
    c = AIOKafkaConsumer(topics.WATCH_EVENTS.name, bootstrap_servers=bootstrap, group_id="bench-raw",
                         auto_offset_reset="earliest", session_timeout_ms=1000, heartbeat_interval_ms=200)
    await c.start()
    got, t0 = 0, None
    try:
        while got < n:
            batch = await c.getmany(timeout_ms=500, max_records=500)
            for rows in batch.values():
                if rows and t0 is None:
                    t0 = time.perf_counter()
                for r in rows:
                    json.loads(r.value)
                    got += 1
        return time.perf_counter() - t0
    finally:
        await c.stop()


def stored(folder: Path) -> int:
    import sqlite3

    total = 0
    for path in folder.glob("watch.events-*.sqlite"):
        row = sqlite3.connect(path).execute("SELECT value FROM meta WHERE key='next_offset'").fetchone()
        total += row[0] if row else 0
    return total


def metrics_text(url: str) -> str:
    """The service's /metrics, as text."""
    return httpx.get(f"{url}/metrics", timeout=10).text


def applied_events(url: str) -> int:
    """The service's count of watch events applied (and duplicates), from its /metrics."""
    text = metrics_text(url)
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("clipstream_recommender_events_applied_total{")
                   and ('result="applied"' in line or 'result="duplicate"' in line)))


def histogram_buckets(text: str, name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts in a /metrics text: upper bound (inf for +Inf) -> count."""
    from prometheus_client.parser import text_string_to_metric_families

    return {float(s.labels["le"]): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == f"{name}_bucket"}


def quantile_between(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile (0-1) of what a histogram counted between two reads of its buckets, as Prometheus'
    ``histogram_quantile`` gives it (linear inside the bucket; the last finite bound when it falls past it); None
    when nothing was counted."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank, lower, below = q * counts[-1], 0.0, 0.0
    for bound, count in zip(bounds, counts):
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = bound, count
    return lower


def drain_time(folder: Path, n_events: int, timeout_s: float = 300.0, after: int = 0,
               applied: Callable[[], int] | None = None) -> tuple[float, int]:
    """(seconds, events) from the service's first stored flush to the one that stores the ``n_events``-th: the
    events applied and stored in that time, over it (what was stored before the first flush is not timed);
    ``after``: timed from when ``applied()`` (the service's applied count, read every 20 ms) first reaches that
    many instead (a warm-up before it): the flush writer trails the applied events during a drain, so a first
    stored flush past the warm-up can come tens of thousands of events later."""
    t0 = time.perf_counter()
    if after and applied is not None:
        while (first := applied()) < after and time.perf_counter() - t0 < timeout_s:
            time.sleep(0.02)
        first = min(first, n_events)
    else:
        while (first := stored(folder)) < max(1, after) and time.perf_counter() - t0 < timeout_s:
            time.sleep(0.01)
    t = time.perf_counter()
    while stored(folder) < n_events and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.01)
    return time.perf_counter() - t, n_events - first


async def probe_freshness(bootstrap: str, url: str, videos: list[str]) -> list[float]:
    """For each probe: a new user likes a video; time from send until that user's feed is no longer cold."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    out = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            for i, video in enumerate(videos):
                user = f"probe{i}"
                event = WatchEvent(user_id=user, video_id=video, action="like").model_dump_json().encode()
                t0 = time.perf_counter()
                await producer.send_and_wait(topics.WATCH_EVENTS.name, event, key=user.encode())
                while time.perf_counter() - t0 < 120:
                    if not (await client.get(f"/v1/feed/{user}", params={"k": 5})).json()["cold_start"]:
                        break
                    await asyncio.sleep(0.002)
                out.append(time.perf_counter() - t0)
    finally:
        await producer.stop()
    return out


def produce_load(bootstrap: str, values: list[bytes], per_s: int, stop, ready) -> None:
    """Background watch events at ``per_s`` (one producer, a batch every 50 ms, ``values`` cycled) until ``stop``
    is set; ``ready`` once the producer is up. Run in a process of its own (see ``through_broker``)."""
    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await p.start()
        ready.set()
        batch, i = max(1, per_s // 20), 0
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                for _ in range(batch):
                    await p.send(topics.WATCH_EVENTS.name, values[i % len(values)], key=str(i % 5000).encode())
                    i += 1
                await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
        finally:
            await p.stop()

    asyncio.run(run())


def service_videos(n: int, rng: np.random.Generator) -> list[VideoEmbedded]:
    """Videos the recommender service accepts: the prepared model's vector size and version (it refuses others)."""
    space = model_space(ModelSettings())
    return [VideoEmbedded(video_id=f"v{i}", vector=v.round(4).tolist(), model_version=space.version,
                          creator_id=f"c{i % 50}", topic=f"t{i % 10}", duration_s=10, created_at=NOW - timedelta(days=2))
            for i, v in enumerate(clustered(n, rng, dim=space.video_dim))]


def through_broker(n_events: int, probes: int, load_per_s: int, console, env: dict | None = None,
                   warm: int = 0) -> dict:
    """``env``: more settings for the recommender process (e.g. its changelog off); ``warm``: events of the same
    kind the service applies first, untimed, so the timed ones meet a matured state (full co-visit rows, every
    user with 20 recent positives: what a learning step reads grows with them)."""
    rng = np.random.default_rng(1)
    vids = service_videos(2000, rng)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        asyncio.run(produce(broker.bootstrap, vids, topics.VIDEOS_EMBEDDED.name, "video_id"))
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_RECOMMENDER_STATE_DIR": f"{tmp}/state",
               "CLIPSTREAM_QDRANT_DATA_DIR": f"{tmp}/qdrant", "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
               "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200", **(env or {})}
        # the events wait in the topic before the service starts, as they do for the bare consumer: both drain
        # the same backlog, and neither shares the two cores with the producer while it is timed
        video_ids = [v.video_id for v in vids]
        asyncio.run(produce(broker.bootstrap, make_events(warm + n_events, 5000, video_ids, rng),
                            topics.WATCH_EVENTS.name, "user_id"))
        del vids  # 2,000 lists of 2,048 floats: each full collection of this process (the probes' client) walks them
        with ServiceProcess("recommender", free_port(), env=env) as proc:
            ours_s, drained = drain_time(Path(tmp) / "state", warm + n_events, 300.0 + warm / 500, after=warm,
                                         applied=lambda: applied_events(proc.url))
            raw_s = asyncio.run(raw_consume(broker.bootstrap, n_events))

            background = [e.model_dump_json().encode() for e in make_events(load_per_s * 2, 5000, video_ids, rng)]
            # the load runs in a process of its own: in a thread here it would hold this process's GIL while the
            # probes below wait to read the clock, and their figures would count that wait as the service's
            spawn = multiprocessing.get_context("spawn")
            stop, ready = spawn.Event(), spawn.Event()
            loader = spawn.Process(target=produce_load, args=(broker.bootstrap, background, load_per_s, stop, ready),
                                   daemon=True)
            loader.start()
            try:
                if not ready.wait(60):
                    raise RuntimeError(f"the background load did not start (exit code {loader.exitcode})")
                settle_heap()  # a collector pause in the client would count as the service's
                lag_before = histogram_buckets(metrics_text(proc.url), APPLY_LAG)
                fresh = asyncio.run(probe_freshness(broker.bootstrap, proc.url, video_ids[:probes]))
                lag_after = histogram_buckets(metrics_text(proc.url), APPLY_LAG)
                if not loader.is_alive():
                    raise RuntimeError(f"the background load stopped during the probes (exit code {loader.exitcode})")
            finally:
                stop.set()
                loader.join(30)
                if loader.is_alive():
                    loader.terminate()
            flushes = {line.split('kind="')[1].split('"')[0]: int(float(line.rsplit(" ", 1)[1]))
                       for line in metrics_text(proc.url).splitlines()
                       if line.startswith("clipstream_recommender_changelog_flushes_total{")}
    return {"events": n_events, "warm_up_events": warm, "timed_events": drained,
            "recommender_events_per_s": round(drained / ours_s, 1),
            "raw_aiokafka_events_per_s": round(n_events / raw_s, 1),
            "ratio_to_raw": round((drained / ours_s) / (n_events / raw_s), 3), "background_load_per_s": load_per_s,
            "probes": probes,
            "freshness_p50_ms": round(percentile_ms(fresh, 50), 1), "freshness_p99_ms": round(percentile_ms(fresh, 99), 1),
            # every event applied during the probes, the load's too: from its record's timestamp to applied (the
            # service's histogram); what the probes add on top is the wait for a poll and the poll itself
            **{f"apply_lag_p{q}_ms": None if v is None else round(v * 1000, 1)
               for q in (50, 99) for v in [quantile_between(lag_before, lag_after, q / 100)]},
            "changelog_flushes": flushes}


def state_digest(rec: Recommender, partition: int, next_offset: int) -> str:
    """A digest of everything a partition's full snapshot holds (users, popularity, rows, the ranker)."""
    rows = rec.snapshot(partition, next_offset, full=True).rows
    h = hashlib.sha256()
    for part in (rows.users, rows.popularity, rows.covisit, rows.transitions, rows.trends):
        h.update(repr(sorted(part, key=lambda r: r[0])).encode())
    h.update(rows.ranker[0] if rows.ranker else b"")
    return h.hexdigest()[:16]


def bench_catalogue(folder: Path, videos: list[str], vecs: np.ndarray, topics: int) -> tuple[EdgeVectorStore,
                                                                                         Catalogue]:
    """An in-process catalogue of ``videos`` (a day old, ``topics`` topics, 50 creators) in ``folder``."""
    store = EdgeVectorStore(folder / "videos", vecs.shape[1])
    cat = Catalogue(store)
    cat.add_many([(VideoInfo(v, f"t{i % topics}", f"c{i % 50}", NOW.timestamp() - 86400, None, ""), vecs[i])
                  for i, v in enumerate(videos)])
    return store, cat


def apply_only(n_events: int, warm: int, dim: int) -> dict:
    """Events/s of ``Recommender.apply`` over 2,000 videos and 5,000 users (mixed actions), learning on and off."""
    rng = np.random.default_rng(0)
    videos = [f"v{i}" for i in range(2000)]
    vecs = rng.normal(size=(len(videos), dim)).astype(np.float32)
    actions = ["complete", "like", "play", "skip"]
    events = [WatchEvent(user_id=f"u{rng.integers(5000)}", video_id=videos[int(rng.integers(len(videos)))],
                         action=actions[i % 4], watch_ms=5000, duration_ms=10000, ts=NOW + timedelta(seconds=i),
                         event_id=f"e{i}") for i in range(warm + n_events)]
    out = {"events": n_events, "warm_up_events": warm, "dim": dim, "flush_every": FLUSH_EVERY}
    default = RecommenderSettings().learn_fraction
    for name, fraction, flush in (("learning_on", default, False), ("learning_off", 0.0, False),
                                  ("learning_on_flushing", default, True)):
        with tempfile.TemporaryDirectory() as tmp:
            store, cat = bench_catalogue(Path(tmp), videos, vecs, topics=20)
            rec = Recommender(RecommenderSettings(state_dir=Path(tmp) / "state", learn_fraction=fraction), cat, "bench")
            rec.assign(0)
            for e in events[:warm]:
                rec.apply(e, 0)
            t = time.perf_counter()
            for i, e in enumerate(events[warm:], start=1):
                rec.apply(e, 0)
                if flush and i % FLUSH_EVERY == 0:  # what a flush takes on the consumer's thread (not the write)
                    rec.snapshot(0, warm + i)
            out[f"{name}_events_per_s"] = round(n_events / (time.perf_counter() - t), 1)
            out[f"{name}_state_digest"] = state_digest(rec, 0, len(events))
            rec.close()
            store.close()
    out["ratio_learning_on_to_off"] = round(out["learning_on_events_per_s"] / out["learning_off_events_per_s"], 3)
    out["ratio_flushing_to_not"] = round(out["learning_on_flushing_events_per_s"] / out["learning_on_events_per_s"], 3)
    return out


def mature(n_events: int, warm: int, dim: int, partitions: int = 6) -> dict:
    """Events/s of ``Recommender.apply`` once the state has matured: the through-the-broker figure's events (every
    one a completed view, 5,000 users, 2,000 videos, keyed to ``partitions`` partitions, statistics shared as
    the service ranks with them) applied after ``warm`` of them, learning on and off. By then the co-visit
    rows are full and every user has twenty recent positives, and the learning step reads all of that for
    its features; the broker figure (50,000 events from an empty state) does not reach that point."""
    rng = np.random.default_rng(1)
    vecs = clustered(2000, rng, dim=dim)
    videos = [f"v{i}" for i in range(2000)]
    events = [e.model_copy(update={"ts": NOW + timedelta(milliseconds=i), "event_id": f"e{i}"})
              for i, e in enumerate(make_events(warm + n_events, 5000, videos, rng))]
    keys = [zlib.crc32(e.user_id.encode()) % partitions for e in events]
    out = {"events": n_events, "warm_up_events": warm, "partitions": partitions}
    default = RecommenderSettings().learn_fraction
    for name, fraction in (("learning_on", default), ("learning_off", 0.0)):
        with tempfile.TemporaryDirectory() as tmp:
            store, cat = bench_catalogue(Path(tmp), videos, vecs, topics=10)
            rec = Recommender(RecommenderSettings(state_dir=Path(tmp) / "state", learn_fraction=fraction), cat,
                              "bench", clock=lambda: NOW.timestamp() + 86400, shared_stats=True)
            for partition in range(partitions):
                rec.assign(partition)
            for e, partition in track(zip(events[:warm], keys), total=warm, description=f"maturing ({name})"):
                rec.apply(e, partition)
            t = time.perf_counter()
            for e, partition in zip(events[warm:], keys[warm:]):
                rec.apply(e, partition)
            out[f"{name}_events_per_s"] = round(n_events / (time.perf_counter() - t), 1)
            rec.close()
            store.close()
    out["ratio_learning_on_to_off"] = round(out["learning_on_events_per_s"] / out["learning_off_events_per_s"], 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--load", type=int, default=5000, help="background events/s during the freshness probes")
    p.add_argument("--warm-events", type=int, default=0,
                   help="events the service applies, untimed, before the timed ones (a matured state)")
    p.add_argument("--skip-feed", action="store_true", help="only the through-the-broker figures")
    p.add_argument("--skip-broker", action="store_true", help="only the feed-at-scale figures")
    p.add_argument("--apply-only", action="store_true", help="only the in-process apply path, learning on and off")
    p.add_argument("--mature-warm", type=int, default=150_000,
                   help="--apply-only: events applied before the matured state's pass is timed (0: no such pass)")
    args = p.parse_args(argv)
    from rich.console import Console

    console = Console()
    if args.apply_only:
        result = apply_only(30_000, 10_000, model_space(ModelSettings()).video_dim)
        console.print(f"apply path in-process ({result['dim']}-d): {result['learning_on_events_per_s']:,.0f} events/s "
                      f"learning on, {result['learning_off_events_per_s']:,.0f} off "
                      f"({result['ratio_learning_on_to_off']:.2f}x); state {result['learning_on_state_digest']}; "
                      f"with a flush's snapshot every {FLUSH_EVERY:,} events "
                      f"{result['learning_on_flushing_events_per_s']:,.0f} ({result['ratio_flushing_to_not']:.2f}x)")
        if args.mature_warm:
            grown = result["mature"] = mature(20_000, args.mature_warm, result["dim"])
            console.print(f"after {args.mature_warm:,} events (rows full, 20 recent positives a user): "
                          f"{grown['learning_on_events_per_s']:,.0f} events/s learning on, "
                          f"{grown['learning_off_events_per_s']:,.0f} off ({grown['ratio_learning_on_to_off']:.2f}x)")
        console.print(f"wrote {write_result('recommender_apply_only', result)}")
        return result
    if args.skip_feed:
        feed = {"videos": 0, "users": 0, "feed_p50_ms": None, "feed_p99_ms": None, "ann_p99_ms": None,
                "numpy_bruteforce_p99_ms": None, "ann_vs_bruteforce_p99": float("nan"), "memory_mb_per_10k_users": None}
    else:
        feed = feed_latency(args.videos, args.users, args.queries, console)
    console.print(f"feed at {feed['videos']:,} videos / {feed['users']:,} users: p50 {feed['feed_p50_ms']} ms, "
                  f"p99 {feed['feed_p99_ms']} ms (goal < 10); retrieval p99 {feed['ann_p99_ms']} ms vs numpy brute "
                  f"force p99 {feed['numpy_bruteforce_p99_ms']} ms ({feed['ann_vs_bruteforce_p99']:.2f}x); "
                  f"memory {feed['memory_mb_per_10k_users']} MB per 10k users")
    if args.skip_broker:
        broker = {"recommender_events_per_s": float("nan"), "raw_aiokafka_events_per_s": float("nan"),
                  "ratio_to_raw": float("nan"), "freshness_p99_ms": None}
    else:
        broker = through_broker(args.events, args.probes, args.load, console, warm=args.warm_events)
    matured = f" after {args.warm_events:,} untimed" if args.warm_events else ""
    console.print(f"through the broker{matured}: {broker['recommender_events_per_s']:,.0f} events/s applied and "
                  f"stored vs {broker['raw_aiokafka_events_per_s']:,.0f} raw ({broker['ratio_to_raw']:.2f}x); "
                  f"freshness p99 {broker['freshness_p99_ms']} ms under {args.load:,} events/s (goal < 100); "
                  f"apply lag p50 {broker.get('apply_lag_p50_ms')} ms, p99 {broker.get('apply_lag_p99_ms')} ms")
    name = "recommender" + ("_broker_only" if args.skip_feed else "_feed_only" if args.skip_broker else "") + \
        ("_matured" if args.warm_events else "")
    path = write_result(name, {"feed": feed, "broker": broker})
    console.print(f"wrote {path}")
    return {"feed": feed, "broker": broker}


if __name__ == "__main__":
    main()
