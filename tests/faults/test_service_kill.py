"""The recommender SIGKILLed under load, twice, restarted each time by the supervisor the demo uses
(shared/runtime/supervisor.py; issue 14, acceptance 3). A steady stream of watch events (distinct
event ids, several users) flows while each incarnation is killed once it has caught up and folded
in some live events, so what it applied but had not stored yet dies with it; the stream's last part
is held back until both kills happened. The supervisor must count both restarts, and at the end
every event counts exactly once: each user's persisted event count and event ids match what was
produced for them, and the whole state (users, popularity, co-visits, ranker) equals one clean pass
over the same records (the helpers of tests/integration/test_recommender_crash.py).

The state dedupes event ids per user, which would hide an event folded in twice after a restart;
so the test also reads each incarnation's ``duplicate`` counter just before it dies (and the last
one's at the end): an offset stored behind its state would replay events into it and count there."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from devkit.demo import DemoService
from shared import topics
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.supervisor import RUNNING, RestartPolicy, Supervisor
from tests.faults.metrics_text import scrape, value
from tests.integration.conftest import publish
from tests.integration.test_recommender_crash import (
    clean_pass,
    dump,
    partition_records,
    stored_offsets,
)
from tests.integration.test_recommender_service import recommender_env
from tests.recsys_data import videos, watch_log

pytestmark = pytest.mark.timeout(240)
EVENTS = 900
USERS = 8  # about 110 events each: well inside the per-user event id window (1,000)
CHUNK = 10  # events per produce, one produce every PAUSE_S: a steady stream of about 100 events a second
PAUSE_S = 0.1
KILLS = 2
RESERVE = 100  # the stream's last events wait until every kill happened: each one lands mid-stream


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (got := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)
    return got


def counter(url: str, result: str) -> float | None:
    """The current incarnation's clipstream_recommender_events_applied_total{result}; None while it does not answer."""
    try:
        return value(scrape(url), "clipstream_recommender_events_applied_total", result=result)
    except httpx.HTTPError:
        return None


def stream(vids) -> list:
    """Several users' watch events with distinct event ids, times in the recent past (one second apart)."""
    start = datetime.now(UTC) - timedelta(seconds=EVENTS + 60)
    return [e.model_copy(update={"ts": start + timedelta(seconds=i)})
            for i, e in enumerate(watch_log(EVENTS, USERS, [v.video_id for v in vids]))]


async def trickle(bootstrap: str, log: list, all_killed: threading.Event, sent: list[int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for start in range(0, len(log), CHUNK):
            if start >= len(log) - RESERVE:
                assert await asyncio.to_thread(all_killed.wait, 150), "the kills never happened"
            chunk = log[start:start + CHUNK]
            futures = [await producer.send(topics.WATCH_EVENTS.name, e.model_dump_json().encode(),
                                           key=e.user_id.encode()) for e in chunk]
            await asyncio.gather(*futures)
            sent.append(start + len(chunk))
            await asyncio.sleep(PAUSE_S)
    finally:
        await producer.stop()


def test_recommender_sigkilled_under_load_is_restarted_and_every_event_counts_once(tmp_path):
    rng = random.Random(14)
    vids = videos(per_topic=5)
    log = stream(vids)
    state = tmp_path / "state"
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, vids, "video_id"))
        rec = DemoService("recommender", free_port(), env=recommender_env(broker, tmp_path),
                          log_path=tmp_path / "recommender.log")
        rec.launch()
        rec.wait_ready(90)
        messages: list[str] = []
        supervisor = Supervisor({"recommender": rec}, RestartPolicy(backoff_initial_s=0.2),
                                status_path=tmp_path / "status.json", log_path=tmp_path / "supervisor.log",
                                on_change=lambda s, m: messages.append(m)).start()
        all_killed = threading.Event()
        sent: list[int] = [0]
        failed: list[BaseException] = []

        def produce() -> None:
            try:
                asyncio.run(trickle(broker.bootstrap, log, all_killed, sent))
            except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
                failed.append(exc)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        duplicates = 0.0
        at_kill: list[tuple[int, int, float]] = []  # (events produced, positions stored, applied by the incarnation)
        try:
            stored, ready_at = 0, 0  # where this incarnation started, and how much was produced when it was ready
            for n in range(KILLS):
                # kill once this incarnation has caught up with what was there when it got ready and folded in
                # a few more events from the live stream (or, on a slow machine, before the stream's last part)
                target = min(ready_at - stored + rng.randint(10, 60), EVENTS - RESERVE - stored)
                wait_until(lambda target=target: (counter(rec.url, "applied") or 0) >= target, 90,
                           f"incarnation {n + 1} to apply {target} events")
                duplicates += counter(rec.url, "duplicate") or 0
                applied = counter(rec.url, "applied") or 0
                pid = rec.pid
                os.kill(pid, signal.SIGKILL)  # a crash: no flush, no goodbye
                wait_until(lambda n=n: supervisor.snapshot()["recommender"].exits == n + 1, 30, "the exit to be seen")
                stored = sum(stored_offsets(state).values())
                at_kill.append((sent[-1], stored, applied))
                wait_until(lambda n=n: supervisor.restarts()["recommender"] == n + 1
                           and supervisor.snapshot()["recommender"].state == RUNNING,
                           90, f"the supervisor to restart the recommender ({n + 1})")
                assert rec.pid != pid
                ready_at = sent[-1]
            all_killed.set()
            producer.join(120)
            assert not producer.is_alive() and not failed, failed
            records = {p: rows for p, rows in asyncio.run(partition_records(broker.bootstrap,
                                                                           topics.WATCH_EVENTS.name)).items() if rows}
            ends = {p: rows[-1].offset + 1 for p, rows in records.items()}
            # (a partition that no user's key falls in stays empty: left out)
            wait_until(lambda: {p: o for p, o in stored_offsets(state).items() if p in ends} == ends, 120,
                       f"the stored positions to reach {ends}")
            duplicates += counter(rec.url, "duplicate") or 0
            status = supervisor.snapshot()["recommender"]
        finally:
            all_killed.set()
            supervisor.stop()
            rec.stop()

    # both kills landed while the stream was still being produced
    assert all(0 < produced < EVENTS for produced, _, _ in at_kill), at_kill
    # the supervisor restarted it after each kill, and counted it
    assert status.restarts == 2 and status.exits == 2 and status.last_exit_code == -signal.SIGKILL, status
    assert sum("recommender was killed by SIGKILL; restarting" in m for m in messages) == 2, messages
    assert supervisor.gave_up() == []
    assert (tmp_path / "recommender.log").read_text().count("restarted by the supervisor") == 2

    # every event produced is on the log once, and counts once in its user's persisted state
    assert sum(len(rows) for rows in records.values()) == EVENTS
    assert duplicates == 0, "an incarnation folded in an event that its stored state already held"
    users = {uid: st for p in records for uid, st in dump(state, p, vids)[0].items()}
    produced = Counter(e.user_id for e in log)
    assert {uid: st.events for uid, st in users.items()} == dict(produced)
    ids = defaultdict(list)
    for e in log:
        ids[e.user_id].append(e.event_id)
    assert {uid: st.event_ids for uid, st in users.items()} == dict(ids), "each user's event ids, once, in order"

    # and the whole state is that of one clean pass over the same records
    clean = tmp_path / "clean"
    clean_pass(clean, vids, records)
    for partition in records:
        got, want = dump(state, partition, vids), dump(clean / "state", partition, vids)
        assert got[0].keys() == want[0].keys()
        for uid, st in got[0].items():
            ref = want[0][uid]
            assert (st.events, st.seen, st.disliked) == (ref.events, ref.seen, ref.disliked), uid
            for name in ("long", "short", "negative"):
                a, b = getattr(st, name), getattr(ref, name)
                assert (a is None) == (b is None) and (a is None or np.array_equal(a, b)), (uid, name)
        assert got[1].keys() == want[1].keys()
        assert all(got[1][v] == pytest.approx(want[1][v]) for v in got[1])
        assert got[2] == want[2] and got[3] == want[3]
