"""This replica's claims on the memberships topic (``shared/ownership.py``): which partitions it serves."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from shared.ownership import Claim


class KafkaClaims:
    def __init__(self, producer: AIOKafkaProducer, topic: str, replica: str, url: str) -> None:
        self.producer, self.topic, self.replica, self.url = producer, topic, replica, url

    async def _send(self, partition: int, generation: int, url: str | None) -> None:
        claim = Claim(partition=partition, generation=generation, url=url, replica=self.replica)
        await self.producer.send_and_wait(self.topic, claim.model_dump_json().encode(), key=str(partition).encode(),
                                          partition=0)

    async def claim(self, partition: int, generation: int) -> None:
        await self._send(partition, generation, self.url)

    async def release(self, partition: int, generation: int) -> None:
        await self._send(partition, generation, None)
