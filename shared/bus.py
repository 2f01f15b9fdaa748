"""One way to build the FastStream Kafka broker every service uses."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.metrics import NAMESPACE
from shared.settings import KafkaSettings

# Room for a dead letter that carries a maximal event base64-encoded.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def make_broker(service: str, settings: KafkaSettings | None = None, **kwargs) -> KafkaBroker:
    settings = settings or KafkaSettings()
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{service}",
        max_request_size=MAX_REQUEST_BYTES,
        middlewares=[
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service, metrics_prefix=f"{NAMESPACE}_{service}_broker")
        ],
        log_level=logging.DEBUG,  # one line per message is for debugging, not for production logs
        **kwargs,
    )
