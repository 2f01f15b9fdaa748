"""Acceptance 2: 10k events through the gateway into a consumer group; restart resumes exactly."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from aiokafka import ConsumerRebalanceListener

from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import WatchEvent
from tests.integration.conftest import API_KEY, wait_for

TOTAL = 10_000
BATCH = 500


def post_events(gateway_url: str, total: int, users: int = 300) -> list[str]:
    """Send ``total`` watch events in batches; returns the event ids in order."""
    ids = []
    with httpx.Client(base_url=gateway_url, headers={"X-API-Key": API_KEY}, timeout=60) as api:
        for start in range(0, total, BATCH):
            events = [{"event_id": f"e{n:06d}", "user_id": f"user-{n % users}", "video_id": f"video-{n % 97}",
                       "action": "progress", "watch_ms": n % 5000} for n in range(start, min(total, start + BATCH))]
            resp = api.post("/v1/events/watch/batch", json={"events": events})
            assert resp.status_code == 202, resp.text
            assert resp.json()["accepted"] == len(events)
            ids += [e["event_id"] for e in events]
    return ids


class Rebalances(ConsumerRebalanceListener):
    """What the group's rebalances did to one consumer: its latest assignment and every partition revoked from it."""

    def __init__(self) -> None:
        self.assigned: set[int] | None = None
        self.revoked: list[int] = []

    async def on_partitions_revoked(self, revoked) -> None:
        self.revoked += [tp.partition for tp in revoked]

    async def on_partitions_assigned(self, assigned) -> None:
        self.assigned = {tp.partition for tp in assigned}


def consumer(kafka_settings, group_id: str, sink: list[WatchEvent], service: str = "it-consumer",
             partitions: dict[str, set[int]] | None = None, rebalances: Rebalances | None = None):
    """A grouped consumer appending what it gets to ``sink`` (and each event's partition to ``partitions``)."""
    broker = make_broker(service, kafka_settings)

    async def handle(event: WatchEvent, record) -> None:
        sink.append(event)
        if partitions is not None:
            partitions.setdefault(event.event_id, set()).add(record.partition)

    extra = {"listener": rebalances} if rebalances is not None else {}
    sub = consume(broker, topics.WATCH_EVENTS, handle, service=service, group_id=group_id,
                  settings=kafka_settings, with_record=True, **extra)
    return broker, sub


async def test_ten_thousand_events_resume_after_restart_without_loss_or_repeat(gateway, kafka_settings, group_id):
    sent = await asyncio.to_thread(post_events, gateway.url, TOTAL)
    assert len(set(sent)) == TOTAL

    first: list[WatchEvent] = []
    broker, _ = consumer(kafka_settings, group_id, first)
    await broker.start()
    await wait_for(lambda: len(first) >= TOTAL // 3, what="first consumer to get a third of the events")
    await broker.stop()  # graceful: the message in flight finishes and its offset is committed
    stopped_at = len(first)
    assert stopped_at < TOTAL, "the first consumer must stop part-way for this test to mean anything"

    second: list[WatchEvent] = []
    broker, _ = consumer(kafka_settings, group_id, second)
    await broker.start()
    await wait_for(lambda: len(first) + len(second) >= TOTAL, what="the restarted consumer to catch up")
    await asyncio.sleep(1.0)  # anything repeated would arrive now
    await broker.stop()

    seen = Counter(e.event_id for e in first + second)
    assert len(first) == stopped_at, "nothing is consumed after a graceful stop"
    assert set(seen) == set(sent), "nothing lost"
    assert max(seen.values()) == 1, f"repeated: {[k for k, v in seen.items() if v > 1][:5]}"
    # per-user order is kept: each user's events arrive in the order they were sent
    for events in (first, second):
        by_user: dict[str, list[str]] = {}
        for e in events:
            by_user.setdefault(e.user_id, []).append(e.event_id)
        assert all(ids == sorted(ids) for ids in by_user.values())


async def test_two_consumers_in_one_group_split_the_partitions(gateway, kafka_settings, group_id):
    got_a: list[WatchEvent] = []
    got_b: list[WatchEvent] = []
    partition_of: dict[str, set[int]] = {}
    moves_a, moves_b = Rebalances(), Rebalances()
    broker_a, sub_a = consumer(kafka_settings, group_id, got_a, "it-a", partition_of, moves_a)
    broker_b, sub_b = consumer(kafka_settings, group_id, got_b, "it-b", partition_of, moves_b)
    await asyncio.gather(broker_a.start(), broker_b.start())
    try:
        def split() -> bool:
            a = {tp.partition for tp in sub_a.consumer.assignment()}
            b = {tp.partition for tp in sub_b.consumer.assignment()}
            settled = moves_a.assigned == a and moves_b.assigned == b  # both listeners have run for it
            return settled and bool(a) and bool(b) and not (a & b) and len(a | b) == topics.WATCH_EVENTS.partitions

        await wait_for(split, what="the group to split the partitions between both consumers")
        parts_a, parts_b = set(moves_a.assigned or ()), set(moves_b.assigned or ())
        moves_a.revoked.clear()
        moves_b.revoked.clear()

        sent = await asyncio.to_thread(post_events, gateway.url, 2000, 200)
        await wait_for(lambda: len({e.event_id for e in got_a + got_b}) >= len(sent),
                       what="both consumers to drain the topic")
        revoked = set(moves_a.revoked + moves_b.revoked)  # before either stops (a leaving consumer moves them too)
    finally:
        await asyncio.gather(broker_a.stop(), broker_b.stop())

    assert got_a and got_b, "both consumers did work"
    assert parts_a.isdisjoint(parts_b)
    assert {e.event_id for e in got_a + got_b} == set(sent), "nothing lost"
    assert all(len(parts) == 1 for parts in partition_of.values()), "an event lives in one partition"
    users: dict[str, set[int]] = {}
    for e in got_a + got_b:
        users.setdefault(e.user_id, set()).update(partition_of[e.event_id])
    assert all(len(parts) == 1 for parts in users.values()), "a user's events (keyed by user_id) share a partition"
    repeated = [i for i, n in Counter(e.event_id for e in got_a + got_b).items() if n > 1]
    # at-least-once (shared/consumer.py): a batch is redelivered only when a rebalance (a missed heartbeat on a
    # loaded machine) revoked its partition before its offsets were committed; without one, each event once
    assert all(partition_of[i] <= revoked for i in repeated), (len(repeated), revoked)
    if not revoked:
        users_a, users_b = {e.user_id for e in got_a}, {e.user_id for e in got_b}
        assert not users_a & users_b, "a user's events all go to one consumer"
