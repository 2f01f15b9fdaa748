"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cli.main import build_parser
from services.registry import SERVICES
from shared import topics
from shared.config_catalog import all_env_names
from shared.settings import GatewaySettings, KafkaSettings, RecommenderSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
INFRA = {"kafka", "qdrant", "prometheus", "grafana"}


def clipstream_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("image", "").startswith("clipstream")}


def running(service: str) -> dict[str, dict]:
    """The compose services that run `clipstream run <service>` (the recommender: one per replica)."""
    return {name: svc for name, svc in clipstream_services().items() if svc.get("command") == ["run", service]}


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


def test_the_model_stage_has_what_models_prepare_imports():
    """`clipstream models prepare` runs in the first stage: every package it imports must be copied there."""
    first = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]
    source = (ROOT / "cli" / "models.py").read_text()
    imported = {line.split()[1].split(".")[0] for line in source.splitlines()
                if line.strip().startswith(("from ", "import ")) and not line.strip().startswith("from __future__")}
    local = {name for name in imported if (ROOT / name).is_dir()}
    assert {"shared", "training"} <= local
    ignored = (ROOT / ".dockerignore").read_text().split()
    for package in local:
        assert f"COPY {package} ./{package}" in first, f"the model stage lacks {package}"
        assert package not in ignored, f".dockerignore keeps {package} out of the build context"


@pytest.mark.parametrize("name", ["gateway", "encoder", "recommender", "stylization", "generation"])
def test_services_run_as_non_root_with_a_healthcheck(name):
    assert "USER clipstream" in (ROOT / "Dockerfile").read_text()
    assert running(name), f"nothing runs {name}"
    for svc in running(name).values():
        assert "/ready" in " ".join(svc["healthcheck"]["test"])


# --- the recommender's replicas ----------------------------------------------------------------------------


def test_the_recommender_runs_as_several_replicas_each_with_its_own_state_volume(settings_env):
    """Each replica keeps its partitions' SQLite files in a volume of its own (SQLite's WAL mode needs a
    local filesystem; two replicas writing one partition's file would corrupt it)."""
    replicas = running("recommender")
    assert sorted(replicas) == ["recommender-0", "recommender-1", "recommender-2"]
    assert len(replicas) <= topics.WATCH_EVENTS.partitions, "a replica beyond the partitions would idle"
    claimed = {}
    for name, svc in replicas.items():
        settings_env(svc["environment"])
        state_dir = RecommenderSettings().state_dir
        mounts = [v.split(":") for v in svc.get("volumes", [])]
        sources = [source for source, target, *_ in mounts if target.rstrip("/") == str(state_dir)]
        assert len(sources) == 1, f"{name}: {state_dir} is not a volume"
        source = sources[0]
        assert not source.startswith(("./", "/")), f"{name}: {source} is a bind mount, not a named volume"
        assert source in COMPOSE["volumes"], f"{name}: volume {source} is not declared"
        assert source not in claimed, f"{name} and {claimed.get(source)} share the volume {source}"
        claimed[source] = name


def test_every_replica_advertises_its_own_address_in_the_compose_network(settings_env):
    """The gateway reaches a partition's owner at the URL the owner advertises on the memberships topic:
    the replica's own service name and port, never 0.0.0.0 (its listen address) or a shared name."""
    urls = {}
    for name, svc in running("recommender").items():
        settings_env(svc["environment"])
        settings = RecommenderSettings()
        assert settings.host == "0.0.0.0", f"{name} would listen on {settings.host}: unreachable from the gateway"
        assert settings.advertised_url, f"{name} advertises no URL (the default http://0.0.0.0:... is unreachable)"
        url = urlsplit(settings.advertised_url)
        assert (url.scheme, url.hostname, url.port) == ("http", name, settings.port), settings.advertised_url
        urls[name] = settings.advertised_url
    assert len(set(urls.values())) == len(urls), urls


def test_the_replicas_share_one_group_and_the_gateway_follows_it(settings_env):
    """One consumer group splits watch.events between the replicas; the gateway reads that group's memberships
    topic, and the topics container creates that group's changelog and memberships topics."""
    groups = set()
    for svc in running("recommender").values():
        settings_env(svc["environment"])
        groups.add(RecommenderSettings().group_id)
    assert len(groups) == 1, groups
    settings_env(COMPOSE["services"]["gateway"]["environment"])
    assert GatewaySettings().recommender_group in groups
    settings_env(COMPOSE["services"]["topics"]["environment"])
    assert RecommenderSettings().group_id in groups


def test_the_gateway_sends_similar_and_search_to_a_replica(settings_env):
    settings_env(COMPOSE["services"]["gateway"]["environment"])
    url = urlsplit(GatewaySettings().recommender_url)
    assert url.hostname in running("recommender"), f"{url.hostname} is no recommender replica"
    settings_env(COMPOSE["services"][url.hostname]["environment"])
    assert url.port == RecommenderSettings().port


def test_prometheus_scrapes_every_replica_as_the_recommender_job():
    [job] = [j for j in PROMETHEUS["scrape_configs"] if j["job_name"] == "clipstream-recommender"]
    targets = {t.partition(":")[0] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == set(running("recommender"))
    assert all(sc["labels"]["service"] == "recommender" for sc in job["static_configs"])


def test_the_topics_container_replicates_no_more_than_the_brokers_it_has(settings_env):
    """One Kafka broker in compose: a replication factor above 1 makes `clipstream topics create` fail."""
    settings_env(COMPOSE["services"]["topics"]["environment"])
    brokers = [name for name, svc in COMPOSE["services"].items() if svc.get("image", "").startswith("apache/kafka")]
    assert KafkaSettings().replication_factor <= len(brokers) == 1


# --- what the stack exposes on the host ---------------------------------------------------------------------

OVERRIDES = ROOT / "deploy" / "compose"
# the container port each published infrastructure service listens on (their images' defaults)
INFRA_PORTS = {"qdrant": 6333, "prometheus": 9090, "grafana": 3000}


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of each published port ("" for every address)."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # the long syntax
            out.append((port.get("host_ip", ""), str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split(":")
        address = parts[0] if len(parts) == 3 else ""
        out.append((address, *(parts[-2:] if len(parts) > 1 else ["", parts[0]])))
    return out


def test_only_the_gateway_is_published_to_the_host():
    """Qdrant, Prometheus and Grafana check no key as deployed, and the services' APIs none either (the
    gateway does): the host's network reaches the gateway and nothing else."""
    exposed = {name: published(svc) for name, svc in COMPOSE["services"].items() if published(svc)}
    port = COMPOSE["services"]["gateway"]["environment"]["CLIPSTREAM_GATEWAY_PORT"]
    assert exposed == {"gateway": [("", port, port)]}, exposed
    for name, svc in COMPOSE["services"].items():
        assert svc.get("network_mode") != "host", f"{name} would listen on the host's network"


def test_the_debug_override_publishes_the_infrastructure_on_loopback_only():
    override = yaml.safe_load((OVERRIDES / "debug-ports.yml").read_text())
    assert set(override["services"]) == set(INFRA_PORTS)
    for name, svc in override["services"].items():
        assert name in COMPOSE["services"], f"the override names unknown {name}"
        assert published(svc) == [("127.0.0.1", str(INFRA_PORTS[name]), str(INFRA_PORTS[name]))], name
        assert set(svc) == {"ports"}, f"{name}: the debug override changes nothing but ports"


def test_the_qdrant_api_key_override_gives_the_key_to_qdrant_and_to_every_service_that_uses_it():
    override = yaml.safe_load((OVERRIDES / "qdrant-api-key.yml").read_text())
    services = override["services"]
    assert services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"].startswith("${QDRANT_API_KEY:?")
    clients = {name for name, svc in services.items() if name != "qdrant"}
    # the services that open the vector store, every recommender replica included (k8s gives them the key too)
    assert clients == {*running("encoder"), *running("recommender")}
    known = all_env_names()
    for name in clients:
        env = services[name]["environment"]
        assert set(env) == {"CLIPSTREAM_QDRANT_API_KEY"} <= known
        assert env["CLIPSTREAM_QDRANT_API_KEY"].startswith("${QDRANT_API_KEY:?"), name
        assert COMPOSE["services"][name]["environment"]["QDRANT_URL"].startswith("http://qdrant:")


def test_the_readme_says_how_to_publish_the_debug_ports():
    readme = (ROOT / "README.md").read_text()
    assert "deploy/compose/debug-ports.yml" in readme and "deploy/compose/qdrant-api-key.yml" in readme
