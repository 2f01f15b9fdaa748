"""Acceptance: SIGKILL one of three recommender replicas during 20k events and delete its state files (its disk
is gone). The survivors take its partitions and restore them from the changelog, resuming exactly at the
offset the changelog recorded; the final state equals one clean pass (nothing lost, nothing counted twice);
the lost replica's users get personal feeds again within the README's bound."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time

import httpx
import pytest

from services.recommender.changelog import MARKER, Marker
from services.recommender.changelog_io import KafkaChangelog
from services.recommender.state_store import PartitionStore
from shared import topics
from shared.ownership import changelog_topic, partition_for
from shared.replay import read_to_end, records_to_end
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from tests.faults.metrics_text import scrape, value
from tests.integration.conftest import API_KEY, publish
from tests.integration.test_recommender_crash import clean_pass, dump, partition_records
from tests.integration.test_recommender_scale_out import start_replica
from tests.recsys_data import videos, watch_log

EVENTS = 20_000
USERS = 400
GROUP = "clipstream-recommender"
PERSONAL_AGAIN_S = 30.0
"""README, "Scaling the recommender": a lost replica's users are personal again within session.timeout.ms plus
the restore (about a second per 10k users) plus the gateway's owner wait; the test runs with a 1 s session
timeout and allows far more than that, for a busy 2-core CI machine."""


async def changelog_markers(bootstrap: str) -> dict[int, list[Marker]]:
    out: dict[int, list[Marker]] = {}
    async for record in records_to_end(bootstrap, changelog_topic(GROUP)):
        if record.key == MARKER:
            out.setdefault(record.partition, []).append(Marker.model_validate_json(record.value))
    return out


async def restore_from_changelog(bootstrap: str, folder, partitions: list[int]) -> None:
    """Every partition's state as a new replica would restore it from the changelog, into local files."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        log = KafkaChangelog(producer, bootstrap, changelog_topic(GROUP), "reader", 2000)
        for partition in partitions:
            marker, end = await log.last(partition)
            restored = await log.load(partition, marker, end)
            store = PartitionStore(folder, topics.WATCH_EVENTS.name, partition)
            store.commit(restored.rows, full=True)
            store.close()
    finally:
        await producer.stop()


@pytest.mark.timeout(900)
def test_losing_a_replica_and_its_disk_moves_its_partitions_through_the_changelog(tmp_path):
    vids = videos(per_topic=15)
    log = watch_log(EVENTS, USERS, [v.video_id for v in vids])
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, vids, "video_id"))
        replicas = [start_replica(broker, tmp_path, f"replica-{i}") for i in range(3)]
        gateway = ServiceProcess("gateway", free_port(), log_path=tmp_path / "gateway.log", env={
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY,
            "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(tmp_path), "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": replicas[0].url,
            "CLIPSTREAM_GATEWAY_RATE_LIMIT_PER_S": "0"})
        try:
            gateway.start()
            half = EVENTS // 2
            asyncio.run(publish(broker.bootstrap, topics.WATCH_EVENTS.name, log[:half], "user_id"))

            def trickle() -> None:  # the second half arrives while the replica dies
                for start in range(half, EVENTS, 500):
                    asyncio.run(publish(broker.bootstrap, topics.WATCH_EVENTS.name, log[start:start + 500], "user_id"))
                    time.sleep(0.2)

            victim = replicas[1]
            producer = threading.Thread(target=trickle)
            producer.start()
            time.sleep(1.0)
            users = sorted({e.user_id for e in log})
            served = {u: httpx.get(f"{victim.url}/v1/feed/{u}", params={"k": 1}, timeout=10) for u in users}
            personal = {u for u, r in served.items() if r.status_code == 200 and not r.json()["cold_start"]}
            owned = {partition_for(u, topics.WATCH_EVENTS.partitions) for u in personal}
            assert owned, "the victim served no partition"
            victim.kill()
            shutil.rmtree(tmp_path / "replica-1")  # its disk is gone
            producer.join()
            survivors = [replicas[0], replicas[2]]

            # the lost replica's users are personal again within the bound (through the gateway): one user per
            # lost partition is asked until it is, then every one of them once
            killed_at = time.monotonic()
            probes = {partition_for(u, topics.WATCH_EVENTS.partitions): u for u in sorted(personal)}
            with httpx.Client(timeout=30, headers={"X-API-Key": API_KEY}) as client:
                def personal_now(user: str) -> bool:
                    resp = client.get(f"{gateway.url}/v1/feed/{user}", params={"k": 5})
                    return resp.status_code == 200 and not resp.json()["cold_start"]

                pending = set(probes.values())
                while pending:
                    assert time.monotonic() - killed_at < PERSONAL_AGAIN_S, f"not personal again: {sorted(pending)}"
                    pending = {u for u in pending if not personal_now(u)}
                    time.sleep(0.1)
                assert all(personal_now(u) for u in sorted(personal))

            records = asyncio.run(partition_records(broker.bootstrap, topics.WATCH_EVENTS.name))
            ends = {p: rows[-1].offset + 1 for p, rows in records.items()}

            deadline = time.monotonic() + 240
            while True:  # every partition's latest flush reflects the whole log
                markers = asyncio.run(changelog_markers(broker.bootstrap))
                if all(markers.get(p) and markers[p][-1].next_offset == end for p, end in ends.items()):
                    break
                assert time.monotonic() < deadline, "the survivors did not catch up"
                time.sleep(0.5)
            samples = [scrape(s.url) for s in survivors]
        finally:
            gateway.stop()
            for proc in replicas:
                proc.stop()

        # the survivors restored the lost partitions from the changelog, resuming where it said
        assert sum(value(m, "clipstream_recommender_restores_total", source="changelog") for m in samples) >= len(owned)
        for partition in owned:
            resumed = [value(m, "clipstream_recommender_resume_offset", partition=str(partition)) for m in samples
                       if ("clipstream_recommender_resume_offset", frozenset({("partition", str(partition))})) in m]
            recorded = {mk.next_offset for mk in markers[partition]}
            assert resumed and all(r in recorded for r in resumed), (partition, resumed)
            assert max(resumed) > 0, "the survivor resumed mid-log, not from the beginning"
        assert all(value(m, "clipstream_recommender_events_applied_total", result="already_applied") == 0
                   for m in samples), "a survivor fetched watch.events below the offset its state reflects"

        # the final state, as the changelog holds it, is one clean pass
        restored = tmp_path / "from-changelog"
        asyncio.run(restore_from_changelog(broker.bootstrap, restored, sorted(ends)))
    clean = tmp_path / "clean"
    clean_pass(clean, vids, records)
    for partition in ends:
        users_, pops, pairs, steps = dump(restored, partition, vids)
        c_users, c_pops, c_pairs, c_steps = dump(clean / "state", partition, vids)
        assert set(users_) == set(c_users), partition
        for uid, st in users_.items():
            ref = c_users[uid]
            assert (st.events, st.seen, st.event_ids) == (ref.events, ref.seen, ref.event_ids), uid
            assert st.long is not None if ref.long is not None else st.long is None
            if ref.long is not None:
                assert st.long.tobytes() == ref.long.tobytes(), uid
        assert pops.keys() == c_pops.keys()
        assert all(pops[v] == pytest.approx(c_pops[v]) for v in pops)
        assert pairs == c_pairs and steps == c_steps
    total = sum(len(dump(restored, p, vids)[0]) for p in ends)
    assert total == len({e.user_id for e in log})


def test_a_corrupt_changelog_record_is_dead_lettered_and_its_partition_rebuilt_from_the_source(tmp_path):
    vids = videos(per_topic=5)
    log = watch_log(2000, 60, [v.video_id for v in vids])
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, vids, "video_id"))
        asyncio.run(publish(broker.bootstrap, topics.WATCH_EVENTS.name, log, "user_id"))
        first = start_replica(broker, tmp_path, "first")
        try:
            records = asyncio.run(partition_records(broker.bootstrap, topics.WATCH_EVENTS.name))
            ends = {p: rows[-1].offset + 1 for p, rows in records.items()}
            deadline = time.monotonic() + 120
            while True:
                markers = asyncio.run(changelog_markers(broker.bootstrap))
                if all(markers.get(p) and markers[p][-1].next_offset == end for p, end in ends.items()):
                    break
                assert time.monotonic() < deadline, "the replica did not store the whole log"
                time.sleep(0.3)
        finally:
            first.stop()
        # a record no build of the recommender writes, inside the range a restore reads
        asyncio.run(publish_raw(broker.bootstrap, changelog_topic(GROUP), 0, b"u/u0", b"{not json",
                                [("flush", b"mangled:1")]))
        second = start_replica(broker, tmp_path, "second")  # another disk: nothing local
        try:
            deadline = time.monotonic() + 120
            while True:
                samples = scrape(second.url)
                if value(samples, "clipstream_recommender_restores_total", source="source") >= 1:
                    break
                assert time.monotonic() < deadline, "partition 0 was not rebuilt from watch.events"
                time.sleep(0.3)
            assert value(samples, "clipstream_recommender_changelog_rejected_total") >= 1
            assert value(samples, "clipstream_recommender_resume_offset", partition="0") == 0
            letters = asyncio.run(read_letters(broker.bootstrap, changelog_topic(GROUP) + topics.DLQ_SUFFIX))
            assert letters and letters[0]["source_topic"] == changelog_topic(GROUP)
            assert "undecodable" in letters[0]["detail"] and letters[0]["partition"] == 0
            # the rebuilt partition reaches the log's end again: every user's feed is personal
            user = next(e.user_id for e in log if partition_for(e.user_id, topics.WATCH_EVENTS.partitions) == 0
                        and e.action in ("like", "share", "complete"))
            deadline = time.monotonic() + 120
            while httpx.get(f"{second.url}/v1/feed/{user}").json().get("cold_start", True):
                assert time.monotonic() < deadline, "the rebuilt partition did not catch up"
                time.sleep(0.3)
        finally:
            second.stop()


async def publish_raw(bootstrap: str, topic: str, partition: int, key: bytes, value_: bytes, headers) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value_, key=key, partition=partition, headers=headers)
    finally:
        await producer.stop()


async def read_letters(bootstrap: str, topic: str) -> list[dict]:
    import json

    return [json.loads(v) async for v in read_to_end(bootstrap, topic)]
