"""Alert rules (promtool) and Grafana dashboards, checked against the metrics the services export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from services.registry import SERVICES
from devkit.metric_catalog import exported_names, registered_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy/prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
GRAFANA_DIR = ROOT / "deploy/grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

REQUIRED_ALERTS = {
    "ClipStreamServiceDown", "ClipStreamConsumerLagHigh", "ClipStreamDeadLetterRate", "ClipStreamErrorRate",
    "ClipStreamFreshnessSLO", "ClipStreamFeedLatencySLO",
    "ClipStreamRecommenderPartitionWithoutOwner", "ClipStreamRecommenderSlowRestore",
}
# What the recommender dashboard shows of the replicas: the metric (or recorded series) some panel must read.
REPLICA_PANELS = {
    "lag by topic and group": "clipstream_recommender_consumer_lag_messages",
    "restores by source": "clipstream_recommender_restores_total",
    "restore time": "clipstream:recommender_restore_duration_seconds:p99_10m",
    "partitions without owner": "clipstream_gateway_partitions_without_owner_count",
    "feed routes by outcome": "clipstream_gateway_feed_routes_total",
}
# Grafana's built-in variables, replaced by a value of the same kind before promtool parses a query
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
NAME_MATCHER = re.compile(r'__name__\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")')
IDENTIFIER = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_:]*")
METRIC = re.compile(r"clipstream_[a-z0-9_]+")


# --- helpers --------------------------------------------------------------------------------------

def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make setup` (it installs Debian's `prometheus` package, "
                    "which provides promtool), or `apt-get install -y --no-install-recommends prometheus`")
    return path


def run_promtool(*args: str | Path) -> str:
    done = subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def rule_groups() -> list[dict]:
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, expr) for every Prometheus query of every dashboard panel."""
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield f"{name} panel {panel['id']} ({panel.get('title')}) {target.get('refId')}", target["expr"]


def rule_queries() -> Iterator[tuple[str, str]]:
    for rule in rules():
        yield f"rule {rule.get('record') or rule.get('alert')}", rule["expr"]


def references(expr: str) -> tuple[set[str], set[str], set[str]]:
    """Metric names, __name__ regexes and recorded (colon) names an expression reads."""
    regexes = {json.loads(value) for op, value in NAME_MATCHER.findall(expr) if op == "=~"}
    exact = {json.loads(value) for op, value in NAME_MATCHER.findall(expr) if op == "="}
    bare = STRING.sub('""', expr)
    identifiers = set(IDENTIFIER.findall(bare))
    metrics = {i for i in identifiers if METRIC.fullmatch(i)} | {n for n in exact if METRIC.fullmatch(n)}
    recorded = {i for i in identifiers | exact if ":" in i}
    return metrics, regexes, recorded


def provisioned_datasource() -> dict:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = [d for d in doc["datasources"] if d["type"] == "prometheus"]
    return source


def datasource_refs(node: object) -> Iterator[object]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


def mount_target(service: str, source: str) -> str | None:
    for volume in COMPOSE["services"][service].get("volumes", []):
        parts = volume.split(":")
        if parts[0].rstrip("/") == source:
            return parts[1].rstrip("/")
    return None


@pytest.fixture(scope="module")
def catalog() -> set[str]:
    return exported_names()


# --- promtool -------------------------------------------------------------------------------------

def test_rule_files_pass_promtool_check():
    assert RULE_FILES, "no rule files under deploy/prometheus/rules"
    assert "SUCCESS" in run_promtool("check", "rules", *RULE_FILES)


def test_prometheus_config_passes_promtool_check_and_loads_the_rules():
    output = run_promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    for path in RULE_FILES:
        assert path.name in output, f"prometheus.yml does not load {path.name}"


def test_rule_unit_tests_pass():
    assert RULE_TESTS, "no promtool tests under deploy/prometheus/tests"
    assert "SUCCESS" in run_promtool("test", "rules", *RULE_TESTS)


def test_dashboard_queries_parse(tmp_path):
    queries = []
    for where, expr in dashboard_queries():
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr}"
        queries.append({"record": f"dashboard_query_{len(queries)}", "expr": expr})
    assert queries
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": queries}]}))
    run_promtool("check", "rules", path)


# --- rules ----------------------------------------------------------------------------------------

def test_required_alerts_have_severity_and_annotations():
    names = {rule["alert"] for rule in alerts()}
    assert REQUIRED_ALERTS <= names, f"missing alerts: {REQUIRED_ALERTS - names}"
    for rule in alerts():
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, rule["alert"]
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key, "").strip(), f"{rule['alert']} has no {key}"


def test_service_down_alert_is_the_one_the_demo_expects():
    (down,) = [rule for rule in alerts() if rule["alert"] == "ClipStreamServiceDown"]
    assert down["expr"].strip() == 'up{job=~"clipstream-.+"} == 0'
    assert down["for"] == "1m" and down["labels"]["severity"] == "critical"
    assert "{{ $labels.job }}" in down["annotations"]["summary"]


def the_alert(name: str) -> dict:
    (rule,) = [rule for rule in alerts() if rule["alert"] == name]
    return rule


def grouping(expr: str) -> set[str]:
    """The labels of an expression's outermost ``by (...)`` clauses."""
    return {label.strip() for found in re.findall(r"\bby\s*\(([^)]*)\)", expr) for label in found.split(",")}


def test_the_lag_alert_fires_per_topic_and_group_with_the_gauges_labels():
    """One alert per topic and consumer group (the worst partition, whichever replica reports it): grouped by
    labels the recommender's lag gauge has, and named in the summary."""
    from services.recommender.metrics import lag

    rule = the_alert("ClipStreamConsumerLagHigh")
    assert lag._labelnames == ("topic", "group", "partition")
    assert grouping(rule["expr"]) == {"service", "topic", "group"} <= {"service", *lag._labelnames}  # service: the scrape's
    for label in ("topic", "group"):
        assert f"$labels.{label}" in rule["annotations"]["summary"], label
    assert rule["for"] == "5m"


def test_the_ownership_alert_reads_the_gateways_gauge_for_a_minute():
    rule = the_alert("ClipStreamRecommenderPartitionWithoutOwner")
    assert " ".join(rule["expr"].split()) == "max(clipstream_gateway_partitions_without_owner_count) > 0"
    assert rule["for"] == "1m" and rule["labels"]["severity"] == "critical"


def test_the_slow_restore_threshold_is_a_bucket_boundary_of_the_restore_histogram():
    """The alert counts restores above the le="60" bucket: 60 s must be one of the histogram's buckets, or
    the selector reads nothing and the alert never fires."""
    from services.recommender.metrics import restore_seconds, restores

    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    slow = recorded["clipstream:recommender_slow_restores:count"]
    [bound] = re.findall(r'le="([^"]+)"', slow)
    assert float(bound) in restore_seconds._upper_bounds
    assert "clipstream:recommender_slow_restores:count" in the_alert("ClipStreamRecommenderSlowRestore")["expr"]
    assert "{{ $labels.source }}" in the_alert("ClipStreamRecommenderSlowRestore")["annotations"]["summary"]
    assert restore_seconds._labelnames == restores._labelnames == ("source",)  # the alert's and the panels' label


def test_the_recommender_dashboard_shows_the_replicas():
    read = set()
    for where, expr in dashboard_queries():
        if where.startswith("recommender.json"):
            metrics, _, recorded = references(expr)
            read |= metrics | recorded
    missing = {what: name for what, name in REPLICA_PANELS.items() if name not in read}
    assert not missing, f"no recommender panel shows {missing}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test_case():
    firing, quiet = set(), set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names <= firing, f"never shown to fire: {names - firing}"
    assert names <= quiet, f"never shown to stay quiet: {names - quiet}"


# --- metric names ---------------------------------------------------------------------------------

def test_metric_catalog_is_derived_from_the_registry():
    registry = CollectorRegistry()
    Counter("clipstream_t_events_total", "doc", ["kind"], registry=registry)
    Histogram("clipstream_t_wait_seconds", "doc", registry=registry)
    Gauge("clipstream_t_depth_count", "doc", registry=registry)
    Info("clipstream_t_build", "doc", registry=registry)
    assert registered_names(registry) == {
        "clipstream_t_events_total", "clipstream_t_events_created",
        "clipstream_t_wait_seconds_bucket", "clipstream_t_wait_seconds_count", "clipstream_t_wait_seconds_sum",
        "clipstream_t_wait_seconds_created", "clipstream_t_depth_count", "clipstream_t_build_info",
    }


def test_metric_catalog_covers_every_service(catalog):
    assert {"clipstream_recommender_freshness_seconds_bucket", "clipstream_recommender_consumer_lag_messages",
            "clipstream_gateway_http_requests_total"} <= catalog
    for service in SERVICES:
        own = {name for name in catalog if name.startswith(f"clipstream_{service}_")}
        assert len(own) >= 5, f"{service} exports almost nothing: {sorted(own)}"
    # other tests in the same process may register metrics of their own; the services' must be well named
    ours = {name for name in catalog if any(name.startswith(f"clipstream_{service}_") for service in SERVICES)}
    badly_named = sorted(name for name in ours if not METRIC.fullmatch(name))
    assert not badly_named, badly_named


@pytest.mark.parametrize("source", ["rules", "dashboards"])
def test_queries_read_only_exported_metrics_and_recorded_series(catalog, source):
    queries = list(rule_queries() if source == "rules" else dashboard_queries())
    recorded = recorded_names()
    problems = []
    for where, expr in queries:
        metrics, regexes, reads = references(expr)
        problems += [f"{where}: {m} is not exported" for m in sorted(metrics - catalog)]
        problems += [f"{where}: __name__=~{r!r} matches no exported metric"
                     for r in sorted(regexes) if not any(re.fullmatch(r, name) for name in catalog)]
        problems += [f"{where}: {r} is recorded by no rule" for r in sorted(reads - recorded)]
    assert not problems, "\n".join(problems)


def test_recorded_names_follow_the_level_metric_operations_convention():
    for name in recorded_names():
        assert re.fullmatch(r"clipstream:[a-z0-9_]+:[a-z0-9_]+", name), name


# --- Grafana --------------------------------------------------------------------------------------

def test_dashboards_use_the_provisioned_datasource():
    source = provisioned_datasource()
    assert DASHBOARDS, "no dashboards under deploy/grafana/dashboards"
    for name, dashboard in dashboards().items():
        refs = list(datasource_refs(dashboard))
        assert refs, f"{name} names no datasource"
        for ref in refs:
            assert isinstance(ref, dict) and ref.get("uid") == source["uid"], f"{name}: datasource {ref}"
            assert ref.get("type") == source["type"], f"{name}: datasource {ref}"
        for panel in panels(dashboard):
            if panel.get("targets"):
                assert "datasource" in panel or all("datasource" in t for t in panel["targets"]), panel["title"]


def test_dashboards_have_a_uid_and_unique_panel_ids():
    uids = []
    for name, dashboard in dashboards().items():
        assert dashboard.get("uid") and dashboard.get("title"), f"{name} has no uid or title"
        uids.append(dashboard["uid"])
        ids = [panel["id"] for panel in panels(dashboard)]
        assert ids and len(ids) == len(set(ids)), f"{name}: duplicate panel ids {ids}"
    assert len(uids) == len(set(uids)), f"dashboard uids repeat: {uids}"


def test_compose_mounts_the_rules_and_the_dashboards_where_the_configs_look():
    rules_at = mount_target("prometheus", "./deploy/prometheus/rules")
    config_at = mount_target("prometheus", "./deploy/prometheus/prometheus.yml")
    assert rules_at and config_at, "docker-compose's prometheus does not mount its config and rules"
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    for pattern in config["rule_files"]:
        in_container = pattern if pattern.startswith("/") else f"{Path(config_at).parent}/{pattern}"
        assert in_container.startswith(rules_at + "/"), f"{pattern} is not under the mounted {rules_at}"
        assert sorted(PROMETHEUS_DIR.glob(pattern)) == RULE_FILES

    provider = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/clipstream.yml").read_text())
    (files,) = [p for p in provider["providers"] if p["type"] == "file"]
    assert files["options"]["path"].rstrip("/") == mount_target("grafana", "./deploy/grafana/dashboards")
    assert mount_target("grafana", "./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
