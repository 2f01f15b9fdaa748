"""The gateway's table of partition owners, read from the memberships topic of a real (embedded) broker:
it waits quietly for a topic that does not exist yet, then follows it, and skips records that are not claims."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from services.gateway.owners import follow_owners
from shared.ownership import Claim, Owners, members_topic
from tests.integration.conftest import publish, wait_for

PARTITIONS = 6


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


def invalid_claims() -> float:
    return REGISTRY.get_sample_value("clipstream_gateway_invalid_claims_total") or 0.0


@contextlib.asynccontextmanager
async def following(owners: Owners, bootstrap: str, topic: str):
    task = asyncio.get_running_loop().create_task(follow_owners(owners, bootstrap, topic, PARTITIONS, retry_s=0.2))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_the_table_follows_the_memberships_topic_once_it_exists(broker, group_id):
    topic = members_topic(group_id)
    before = invalid_claims()
    owners = Owners()
    async with following(owners, broker.bootstrap, topic) as task:
        await asyncio.sleep(1.0)  # the recommender has not created the topic yet: retried, not failed
        assert not task.done() and owners.claims == {}
        await create_topic(broker.bootstrap, topic)
        claims = [Claim(partition=p, generation=1, url=f"http://r{p % 2}:8002", replica=f"r{p % 2}")
                  for p in range(PARTITIONS)]
        await publish(broker.bootstrap, topic, [*claims[:3], b"not a claim", *claims[3:]])
        await wait_for(lambda: len(owners.claims) == PARTITIONS, 30, "the claims")
        assert owners.owner(3) == "http://r1:8002" and owners.without_owner(PARTITIONS) == []
        await publish(broker.bootstrap, topic, [Claim(partition=3, generation=1, url=None, replica="r1")])
        await wait_for(lambda: owners.owner(3) is None, 30, "the release")
    assert invalid_claims() - before == 1

    again = Owners()  # a gateway started later reads the topic from its beginning
    async with following(again, broker.bootstrap, topic):
        await wait_for(lambda: 3 in again.claims and again.owner(3) is None and len(again.claims) == PARTITIONS,
                       30, "the table rebuilt")
    assert again.urls() == ["http://r0:8002", "http://r1:8002"]
