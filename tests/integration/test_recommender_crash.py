"""Acceptance: SIGKILL the recommender at random points during 20k events, restart it each time;
it ends in exactly the state of one clean pass (nothing lost, nothing counted twice)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.app import GROUP
from services.recommender.engine import Recommender
from services.recommender.state_store import PartitionStore
from shared import topics
from shared.events import WatchEvent
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore
from tests.integration.conftest import publish
from tests.integration.test_recommender_service import recommender_env
from tests.recsys_data import videos, watch_log

pytestmark = pytest.mark.integration
EVENTS = 20_000
KILLS = 6


async def partition_records(bootstrap: str, topic: str) -> dict[int, list]:
    """Every record of every partition, read until a fetch comes back empty."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=300)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: dict[int, list] = {tp.partition: [] for tp in parts}
        while batch := await consumer.getmany(timeout_ms=1000, max_records=5000):
            for tp, rows in batch.items():
                out[tp.partition] += rows
        return out
    finally:
        await consumer.stop()


def stored_offsets(folder) -> dict[int, int]:
    out = {}
    for path in folder.glob("watch.events-*.sqlite"):
        db = sqlite3.connect(path)
        try:
            row = db.execute("SELECT value FROM meta WHERE key='next_offset'").fetchone()
        except sqlite3.OperationalError:  # a file whose tables its process is creating (or was, when killed)
            row = None
        finally:
            db.close()
        out[int(path.stem.rsplit("-", 1)[1])] = row[0] if row else 0
    return out


def catalogue_of(folder, vids) -> tuple[EdgeVectorStore, Catalogue]:
    store = EdgeVectorStore(folder / "videos", len(vids[0].vector))
    catalogue = Catalogue(store)
    for v in vids:
        catalogue.add(VideoInfo(v.video_id, v.topic, v.creator_id, v.created_at.timestamp(), v.duplicate_of, v.title),
                      v.vector)
    return store, catalogue


def clean_pass(folder, vids, records: dict[int, list]) -> None:
    store, catalogue = catalogue_of(folder, vids)
    rec = Recommender(RecommenderSettings(state_dir=folder / "state"), catalogue, topics.WATCH_EVENTS.name)
    for partition, rows in records.items():
        rec.assign(partition)
        for r in rows:
            rec.apply(WatchEvent.model_validate_json(r.value), partition)
        rec.commit(partition, rows[-1].offset + 1)
    rec.close()
    store.close()


def dump(folder, partition: int, vids) -> tuple[dict, dict, dict, int]:
    """Users (their stored steps applied with ``vids``' vectors), popularity, the co-visitation and transitions
    pairs, and the ranker's steps, as stored."""
    store = PartitionStore(folder, topics.WATCH_EVENTS.name, partition)
    videos_store, catalogue = catalogue_of(folder.parent / f"read-{folder.name}-{partition}", vids)
    try:
        rows = store.load()
        users = Recommender(RecommenderSettings(), catalogue, topics.WATCH_EVENTS.name).users_of(rows)
        pairs = {(kind, a, b): w for kind, table in (("c", rows.covisit), ("t", rows.transitions))
                 for a, row in table for b, w in row.items()}
        return (users, {v: tuple(entry) for v, *entry in rows.popularity}, pairs,
                rows.ranker[1] if rows.ranker else 0)
    finally:
        store.close()
        videos_store.close()


def test_sigkill_at_random_points_ends_in_the_state_of_one_clean_pass(tmp_path):
    rng = random.Random(2026)
    vids = videos(per_topic=15)
    log = watch_log(EVENTS, 400, [v.video_id for v in vids])
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, vids, "video_id"))
        env = recommender_env(broker, tmp_path)
        state = tmp_path / "state"

        def trickle() -> None:  # the events arrive while the consumer is being killed
            for start in range(0, EVENTS, 500):
                asyncio.run(publish(broker.bootstrap, topics.WATCH_EVENTS.name, log[start:start + 500], "user_id"))
                time.sleep(0.25)

        producer = threading.Thread(target=trickle)
        producer.start()
        progress = []
        for _ in range(KILLS):
            proc = ServiceProcess("recommender", free_port(), env=env, log_path=tmp_path / "recommender.log")
            proc.start()
            time.sleep(rng.uniform(0.05, 1.0))
            proc.kill()
            progress.append(sum(stored_offsets(state).values()))
        producer.join()
        records = asyncio.run(partition_records(broker.bootstrap, topics.WATCH_EVENTS.name))
        ends = {p: rows[-1].offset + 1 for p, rows in records.items()}
        proc = ServiceProcess("recommender", free_port(), env=env, log_path=tmp_path / "recommender.log")
        with proc:
            deadline = time.monotonic() + 240
            while stored_offsets(state) != ends:
                assert time.monotonic() < deadline, f"stuck at {stored_offsets(state)} of {ends}"
                time.sleep(0.2)
    assert any(0 < p < EVENTS for p in progress), f"no kill landed mid-stream: {progress}"

    clean = tmp_path / "clean"
    clean_pass(clean, vids, records)
    ranker_steps: dict[int, tuple[int, int]] = {}
    for partition in records:
        users, pops, pairs, steps = dump(state, partition, vids)
        c_users, c_pops, c_pairs, c_steps = dump(clean / "state", partition, vids)
        assert set(users) == set(c_users)
        for uid, st in users.items():
            ref = c_users[uid]
            assert st.events == ref.events, (uid, "events counted", st.events, ref.events)
            assert st.seen == ref.seen and st.disliked == ref.disliked and st.event_ids == ref.event_ids
            for name in ("long", "short", "negative"):
                a, b = getattr(st, name), getattr(ref, name)
                assert (a is None) == (b is None) and (a is None or np.array_equal(a, b)), (uid, name)
        assert pops.keys() == c_pops.keys()
        assert all(pops[v] == pytest.approx(c_pops[v]) for v in pops)
        assert pairs == c_pairs and any(kind == "t" for kind, _, _ in pairs), "transitions stored, exactly once"
        ranker_steps[partition] = (steps, c_steps)
    assert sum(len(rows) for rows in records.values()) == EVENTS
    # the ranker learned, and took exactly the steps of the clean pass
    assert all(steps == c_steps > 0 for steps, c_steps in ranker_steps.values()), ranker_steps
    total = sum(len(dump(state, p, vids)[0]) for p in records)
    assert total == len({e.user_id for e in log})


async def commit_group_to_end(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """The group's committed offsets at each partition's end, as a consumer that read everything and
    died before its state was stored would leave them."""
    records = await partition_records(bootstrap, topic)
    ends = {p: rows[-1].offset + 1 for p, rows in records.items() if rows}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = {TopicPartition(topic, p): end for p, end in ends.items()}
        consumer.assign(list(parts))
        await consumer.commit(parts)
        return ends
    finally:
        await consumer.stop()


def test_state_never_stored_starts_at_the_log_start_whatever_the_group_committed(tmp_path):
    vids = videos(per_topic=5)
    log = watch_log(600, 40, [v.video_id for v in vids])
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, vids, "video_id"))
        asyncio.run(publish(broker.bootstrap, topics.WATCH_EVENTS.name, log, "user_id"))
        ends = asyncio.run(commit_group_to_end(broker.bootstrap, topics.WATCH_EVENTS.name, GROUP))
        state = tmp_path / "state"
        with ServiceProcess("recommender", free_port(), env=recommender_env(broker, tmp_path),
                            log_path=tmp_path / "recommender.log"):
            deadline = time.monotonic() + 120
            while stored_offsets(state) != ends:
                assert time.monotonic() < deadline, f"stuck at {stored_offsets(state)} of {ends}"
                time.sleep(0.2)
    counted = {uid: st.events for p in ends for uid, st in dump(state, p, vids)[0].items()}
    expected: dict[str, int] = {}
    for e in log:
        expected[e.user_id] = expected.get(e.user_id, 0) + 1
    assert counted == expected
