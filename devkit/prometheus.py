"""A local Prometheus (Debian's ``prometheus`` package) scraping services on loopback ports.

Used by ``clipstream demo`` and the integration tests: writes a config into a work folder (one
scrape job ``clipstream-<service>`` per service, the repository's alert rules), runs the binary
with its storage in that folder on a free port, and answers the few HTTP API questions they ask
(targets, instant and range queries, rules, alerts). Production runs its own Prometheus with
``deploy/prometheus/prometheus.yml``; nothing here is used there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from shared.runtime.broker import free_port
from shared.runtime.processes import terminate

REPO = Path(__file__).resolve().parents[1]
RULES_GLOB = REPO / "deploy" / "prometheus" / "rules" / "*.yml"
INSTALL_HINT = "install Debian's prometheus package: apt-get install -y --no-install-recommends prometheus"


class PrometheusMissing(RuntimeError):
    """The prometheus binary is not installed."""


def prometheus_binary() -> str | None:
    """The prometheus executable: $CLIPSTREAM_PROMETHEUS_BIN, then PATH, then Debian's path."""
    explicit = os.environ.get("CLIPSTREAM_PROMETHEUS_BIN")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None


def duration(seconds: float) -> str:
    """Seconds as a Prometheus duration (``2s``, ``500ms``)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def job_name(service: str) -> str:
    return f"clipstream-{service}"


def config(targets: Mapping[str, str], rule_files: Iterable[str | Path] = (), scrape_interval_s: float = 2.0,
           evaluation_interval_s: float | None = None) -> dict:
    """The config as a dict: ``targets`` maps a service name to the ``host:port`` serving its /metrics."""
    interval = duration(scrape_interval_s)
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval,
                   "evaluation_interval": duration(evaluation_interval_s or scrape_interval_s)},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": job_name(service), "metrics_path": "/metrics",
             "static_configs": [{"targets": [address], "labels": {"service": service}}]}
            for service, address in targets.items()
        ],
    }


@dataclass
class LocalPrometheus:
    """A prometheus process whose config, storage and log live under ``workdir``."""

    workdir: Path
    targets: dict[str, str]
    rule_files: list[str | Path] = field(default_factory=lambda: [RULES_GLOB])
    scrape_interval_s: float = 2.0
    evaluation_interval_s: float | None = None
    port: int = 0
    host: str = "127.0.0.1"
    log_file: Path | None = None
    """Where the process's output goes; ``workdir/prometheus.log`` when unset."""
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.log_file or self.workdir / "prometheus.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        body = config(self.targets, self.rule_files, self.scrape_interval_s, self.evaluation_interval_s)
        # JSON is YAML: no YAML library needed to write it
        self.config_path.write_text("# written by devkit/prometheus.py\n" + json.dumps(body, indent=2) + "\n")
        return self.config_path

    def start(self, timeout_s: float = 30.0) -> LocalPrometheus:
        binary = prometheus_binary()
        if binary is None:
            raise PrometheusMissing(f"no prometheus binary found; {INSTALL_HINT}")
        if not self.port:
            self.port = free_port(self.host)
        self.write_config()
        shutil.rmtree(self.data_dir, ignore_errors=True)  # a fresh series database per run
        command = [binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_dir}",
                   f"--web.listen-address={self.host}:{self.port}", "--log.level=warn"]
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(f"prometheus exited with {code}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"prometheus not ready after {timeout_s}s; see {self.log_path}")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        proc, self._proc = self._proc, None
        return terminate(proc, timeout_s)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the HTTP API ---------------------------------------------------------------------------------

    def api(self, path: str, **params: object) -> object:
        resp = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10.0)
        resp.raise_for_status()
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {body.get('error')}")
        return body["data"]

    def active_targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]

    def target_health(self) -> dict[str, str]:
        """Job name -> health (up, down, unknown)."""
        return {t["labels"]["job"]: t["health"] for t in self.active_targets()}

    def wait_targets_up(self, timeout_s: float = 30.0) -> dict[str, str]:
        """Until every target has been scraped successfully; returns job -> health either way."""
        deadline = time.monotonic() + timeout_s
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            health = self.target_health()
            if len(health) == len(self.targets) and all(h == "up" for h in health.values()):
                return health
            time.sleep(0.25)
        return health

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector: [{"metric": {...}, "value": [ts, "1"]}, ...]."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def scalar(self, expr: str) -> float | None:
        """The first sample of an instant query as a float (None when empty)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[tuple[float, float]]:
        """The first series of a range query as (unix time, value) pairs."""
        data = self.api("query_range", query=expr, start=start, end=end, step=duration(step_s))
        if not data["result"]:
            return []
        return [(float(t), float(v)) for t, v in data["result"][0]["values"]]

    def rules(self) -> list[dict]:
        """Every loaded rule: [{"name", "type", "state", "query", ...}, ...]."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict]:
        """Pending and firing alerts: [{"labels": {...}, "state": "firing", ...}, ...]."""
        return self.api("alerts")["alerts"]
