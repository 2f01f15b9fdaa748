"""One way to build the FastStream Kafka broker every service uses."""

from __future__ import annotations

import logging
from functools import partial

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.metrics import NAMESPACE
from shared.settings import KafkaSettings

# Room for a dead letter that carries a maximal event base64-encoded.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
# aiokafka's default, kept for consumers: a JoinGroup request may wait at the broker until every
# member has rejoined, which can take longer than a publish should ever wait.
CONSUMER_REQUEST_TIMEOUT_MS = 40_000


class _Broker(KafkaBroker):
    """FastStream's broker with consumers that keep aiokafka's request timeout: FastStream builds its
    consumers from the broker's connection options (the producer's short timeout among them) anew at
    every connect, so the consumer factory is wrapped after each connect."""

    consumer_request_timeout_ms = CONSUMER_REQUEST_TIMEOUT_MS

    async def _connect(self):
        await super()._connect()
        config = self.config.broker_config
        config.builder = partial(config.builder, request_timeout_ms=self.consumer_request_timeout_ms)
        return config.builder


def make_broker(service: str, settings: KafkaSettings, **kwargs) -> KafkaBroker:
    """The service's broker; its producer gives up on a request after ``settings.request_timeout_ms``."""
    broker = _Broker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{service}",
        max_request_size=MAX_REQUEST_BYTES,
        request_timeout_ms=settings.request_timeout_ms,
        middlewares=[
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service, metrics_prefix=f"{NAMESPACE}_{service}_broker")
        ],
        log_level=logging.DEBUG,  # one line per message is for debugging, not for production logs
        **kwargs,
    )
    broker.consumer_request_timeout_ms = max(CONSUMER_REQUEST_TIMEOUT_MS, settings.request_timeout_ms)
    return broker
