"""The repository's alert rules in a real Prometheus (Debian's package) scraping a real service:
stopping the recommender makes ClipStreamServiceDown fire for its job."""

from __future__ import annotations

import time

import pytest

from devkit.prometheus import (
    INSTALL_HINT,
    RULES_GLOB,
    LocalPrometheus,
    prometheus_binary,
)
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess

pytestmark = pytest.mark.integration
ALERT = "ClipStreamServiceDown"
JOB = "clipstream-recommender"


def firing(prom: LocalPrometheus) -> list[dict]:
    return [a for a in prom.alerts()
            if a["labels"].get("alertname") == ALERT and a["labels"].get("job") == JOB and a["state"] == "firing"]


@pytest.mark.timeout(300)
def test_service_down_alert_fires_when_the_recommender_stops(tmp_path):
    assert prometheus_binary(), f"the prometheus binary is missing: {INSTALL_HINT}"
    rule_files = sorted(RULES_GLOB.parent.glob(RULES_GLOB.name))
    assert any(ALERT in p.read_text() for p in rule_files), f"no rule named {ALERT} in {RULES_GLOB}"
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        recommender = ServiceProcess("recommender", free_port(), log_path=tmp_path / "recommender.log", env={
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_QDRANT_DATA_DIR": str(tmp_path / "qdrant"),
            "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(tmp_path / "state")})
        prom = LocalPrometheus(tmp_path / "prometheus", {"recommender": f"127.0.0.1:{recommender.port}"},
                               rule_files=rule_files, scrape_interval_s=1.0, evaluation_interval_s=1.0)
        with recommender, prom:
            loaded = {r["name"]: r for r in prom.rules()}
            assert ALERT in loaded, f"Prometheus did not load {ALERT}: {sorted(loaded)}; log: {prom.log_tail()}"
            health = prom.wait_targets_up(timeout_s=30)
            assert health == {JOB: "up"}, health
            assert not firing(prom)

            recommender.stop()
            deadline = time.monotonic() + 150  # the rule waits `for: 1m` before firing
            alerts: list[dict] = []
            while time.monotonic() < deadline:
                alerts = firing(prom)
                if alerts:
                    break
                time.sleep(1)
            assert alerts, f"{ALERT} for {JOB} not firing after 150 s: {prom.alerts()}"
            assert prom.target_health() == {JOB: "down"}
            assert alerts[0]["labels"].get("service") == "recommender"
