"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.cli import build_parser
from services.registry import SERVICES
from shared.config_catalog import all_env_names
from shared.settings import GatewaySettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
INFRA = {"kafka", "qdrant", "prometheus", "grafana"}


def clipstream_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("image", "").startswith("clipstream")}


def test_infrastructure_and_every_runnable_service_are_defined():
    services = COMPOSE["services"]
    assert INFRA <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    commands = {tuple(svc["command"]) for svc in clipstream_services().values()}
    for name in SERVICES:
        assert ("run", name) in commands, f"compose runs no `clipstream run {name}`"


def test_commands_parse_with_the_cli():
    parser = build_parser()
    for name, svc in clipstream_services().items():
        parser.parse_args(svc["command"])  # exits on an unknown command or choice


def test_environment_names_are_read_by_a_settings_class():
    known = all_env_names()
    for name, svc in clipstream_services().items():
        for env in svc.get("environment", {}):
            assert env in known, f"{name}: {env} is read by no settings class"
    assert {"KAFKA_BOOTSTRAP_SERVERS", "QDRANT_URL"} <= known


def test_dependencies_exist_and_kafka_is_healthy_before_topics_are_created():
    services = COMPOSE["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert build_parser().parse_args(services["topics"]["command"]).action == "create"


def test_published_ports_match_settings_and_prometheus_targets():
    services = COMPOSE["services"]
    gw = services["gateway"]
    port = gw["environment"]["CLIPSTREAM_GATEWAY_PORT"]
    assert GatewaySettings(port=int(port)).port == int(port)
    assert f"{port}:{port}" in gw["ports"]
    targets = [t for job in PROMETHEUS["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    for target in targets:
        host, _, target_port = target.partition(":")
        assert host in services, f"prometheus scrapes unknown service {host}"
        env = services[host].get("environment", {})
        own = [v for k, v in env.items() if k.endswith("_PORT") and k.startswith("CLIPSTREAM_") and "_SERVICE_" not in k]
        expected = own[0] if own else env.get("CLIPSTREAM_SERVICE_PORT")
        assert target_port == str(expected or ServiceSettings().port), target


def test_mounted_files_exist():
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_dockerfile_builds_the_package_and_runs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in text and 'ENTRYPOINT ["clipstream"]' in text
    for path in ("pyproject.toml", "shared", "services", "models"):
        assert f"COPY {path}" in text, f"the image lacks {path}"


@pytest.mark.parametrize("name", ["gateway", "encoder", "recommender", "stylization", "generation"])
def test_services_run_as_non_root_with_a_healthcheck(name):
    assert "USER clipstream" in (ROOT / "Dockerfile").read_text()
    assert "/ready" in " ".join(COMPOSE["services"][name]["healthcheck"]["test"])
