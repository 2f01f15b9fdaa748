"""Which sample names the services export on /metrics, read back from prometheus_client's registry.

Dashboards and alert rules are checked against this set. Each service's app is built (no broker
is contacted: apps connect in their lifespan, which is not run) so that metrics created at
import or at app construction register; the few created on first use are created here too.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric

from shared.metrics import NAMESPACE, published_counter
from shared.settings import Settings

# Sample name suffixes of each metric type, as the text exposition format writes them.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}

# Services that publish events: their published-messages counter is created by the first publish.
PUBLISHERS = ("gateway", "encoder", "stylization", "generation")


def build_service_apps(scratch: Path) -> None:
    """Build every registered service's app; embedded vector stores go under ``scratch``."""
    from services.registry import SERVICES

    settings = Settings().with_section("qdrant", url=None, data_dir=scratch)
    for service in SERVICES:
        importlib.import_module(f"services.{service}.app").create_app(settings)


def register_first_use_metrics() -> None:
    """Create the metrics that code creates lazily, at the first event they count."""
    from services.gateway.limits import rejected_requests

    rejected_requests()
    for service in PUBLISHERS:
        published_counter(service)


def sample_names(families: Iterable[Metric]) -> set[str]:
    """Every sample name the families export, labelled children or not."""
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def registered_names(registry: CollectorRegistry = REGISTRY, prefix: str = NAMESPACE + "_") -> set[str]:
    """Sample names of the metrics in ``registry`` whose name starts with ``prefix``."""
    return {name for name in sample_names(registry.collect()) if name.startswith(prefix)}


def exported_names() -> set[str]:
    """The sample names (``clipstream_*``) that the services together export."""
    with tempfile.TemporaryDirectory(prefix="clipstream-metric-catalog-") as scratch:
        build_service_apps(Path(scratch))
    register_first_use_metrics()
    return registered_names()
