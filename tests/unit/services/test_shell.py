"""Every service is built on the one service shell (``shared/service.py``) by the one runner
(``services/registry.py``), issue 15, acceptance 4: each of the five serves /health, /ready and /metrics,
and its /metrics exposes HTTP request metrics and build info.

The apps are built the way ``clipstream run NAME`` builds them (settings from the environment, the port
given on the command line) and called in-process, never started: no broker is contacted, no model loaded.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.registry import SERVICES, build
from shared.service import VERSION
from shared.settings import ModelSettings


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> dict:
    """name -> (settings, app) for the five services, their var/ folders in a scratch directory."""
    with pytest.MonkeyPatch.context() as env:
        # the models prepared at setup stay where they are (the recommender reads their sizes at build)
        env.setenv("CLIPSTREAM_MODELS_CACHE_DIR", str(ModelSettings().cache_dir.resolve()))
        env.chdir(tmp_path_factory.mktemp("services"))  # embedded Qdrant shards, media, state land here
        for name in ("CLIPSTREAM_QDRANT_URL", "QDRANT_URL"):
            env.delenv(name, raising=False)
        yield {name: build(name, port=18100 + i) for i, name in enumerate(sorted(SERVICES))}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def key(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset(labels.items())


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


def test_the_runner_builds_all_five_with_the_port_given(apps):
    assert sorted(apps) == ["encoder", "gateway", "generation", "recommender", "stylization"]
    for i, name in enumerate(sorted(SERVICES)):
        settings, _ = apps[name]
        assert settings.port == 18100 + i, name


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_every_service_exposes_request_metrics_and_build_info(apps, service):
    _, app = apps[service]
    prefix = f"clipstream_{service}_"
    requests, durations = prefix + "http_requests_total", prefix + "http_request_duration_seconds_count"
    async with client(app) as http:
        before = samples((await http.get("/metrics")).text)
        health = await http.get("/health")
        missing = await http.get("/no/such/route")
        metrics = await http.get("/metrics")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert missing.status_code == 404
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    after = samples(metrics.text)

    def counted(sample: tuple[str, frozenset]) -> float:
        return after.get(sample, 0.0) - before.get(sample, 0.0)

    assert after[key(prefix + "build_info", service=service, version=VERSION)] == 1.0
    assert counted(key(requests, route="/health", method="GET", status="200")) == 1
    assert counted(key(durations, route="/health", method="GET")) == 1
    assert counted(key(requests, route="unmatched", method="GET", status="404")) == 1
    assert key(requests, route="/metrics", method="GET", status="200") in after  # the first scrape, counted


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_every_service_answers_an_unexpected_exception_with_a_counted_json_500(apps, service):
    _, app = apps[service]

    @app.get("/broken-for-test")
    async def broken() -> None:
        raise RuntimeError("a bug")

    async with client(app) as http:
        answer = await http.get("/broken-for-test")
        metrics = samples((await http.get("/metrics")).text)
    assert answer.status_code == 500 and answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"].startswith(f"internal error: the {service} failed to handle this request")
    assert metrics[key(f"clipstream_{service}_http_requests_total", route="/broken-for-test", method="GET",
                       status="500")] == 1


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_ready_is_served_and_says_not_ready_without_a_broker(apps, service):
    _, app = apps[service]
    async with client(app) as http:
        answer = await http.get("/ready")
    assert answer.status_code == 503 and answer.json() == {"status": "not ready"}


def test_the_encoder_serves_the_ops_endpoints_only(apps):
    _, app = apps["encoder"]
    paths = {getattr(route, "path", None) for route in app.routes} - {"/broken-for-test"}  # added by a test above
    assert paths == {"/health", "/ready", "/metrics"}
    assert app.openapi_url is None and app.docs_url is None


def test_the_gateway_refuses_to_start_exposed_with_the_demo_key_before_any_app_is_built(monkeypatch):
    monkeypatch.delenv("CLIPSTREAM_GATEWAY_API_KEYS", raising=False)
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_HOST", "0.0.0.0")
    with pytest.raises(SystemExit, match="CLIPSTREAM_GATEWAY_API_KEYS"):
        build("gateway")


def test_an_unknown_service_is_refused_with_the_list():
    with pytest.raises(SystemExit, match="available: encoder, gateway, generation, recommender, stylization"):
        build("transcoder")


def test_a_service_process_limits_numpy_blas_to_the_threads_set_and_zero_leaves_it():
    import threadpoolctl

    from shared.service import limit_blas

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]

    before = threadpoolctl.ThreadpoolController()  # restored at the end: the limit is process-wide
    try:
        limit_blas(0)
        assert blas_threads() == [pool["num_threads"] for pool in before.info() if pool["user_api"] == "blas"]
        limit_blas(1)
        assert blas_threads() and set(blas_threads()) == {1}
    finally:
        for pool in before.lib_controllers:
            pool.set_num_threads(pool.num_threads)
