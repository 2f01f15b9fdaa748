"""The demo's supervisor (shared/runtime/supervisor.py) with real processes: a service killed with
SIGKILL comes back on its port and answers /ready, the restart counted, logged and in the status
file; a process that exits at every start is restarted with doubling backoff, then given up on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from devkit.demo import DemoService
from shared.runtime.broker import free_port
from shared.runtime.supervisor import GAVE_UP, RUNNING, RestartPolicy, Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.1)


def test_a_killed_service_is_restarted_on_its_port_and_the_restart_is_counted(broker, tmp_path):
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_API_KEYS": "k",
           "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(tmp_path / "media")}
    gateway = DemoService("gateway", free_port(), env=env, log_path=tmp_path / "gateway.log")
    gateway.launch()
    gateway.wait_ready(60)
    status_file = tmp_path / "status.json"
    messages: list[str] = []
    supervisor = Supervisor({"gateway": gateway}, RestartPolicy(backoff_initial_s=0.2), status_path=status_file,
                            log_path=tmp_path / "supervisor.log", on_change=lambda s, m: messages.append(m)).start()
    try:
        first = gateway.pid
        os.kill(first, signal.SIGKILL)  # a crash: no cleanup, no goodbye

        def restarted() -> bool:
            child = json.loads(status_file.read_text())["children"]["gateway"]
            return child["restarts"] == 1 and child["state"] == RUNNING

        wait_until(restarted, 60, "the gateway to be restarted and ready")
        status = json.loads(status_file.read_text())["children"]["gateway"]
        assert status["pid"] == gateway.pid != first and status["last_exit_code"] == -signal.SIGKILL
        assert httpx.get(f"{gateway.url}/ready", timeout=5).status_code == 200  # the same port answers
        assert supervisor.restarts() == {"gateway": 1} and supervisor.gave_up() == []
        assert any("was killed by SIGKILL; restarting in 0.2 s (restart 1)" in m for m in messages), messages
        assert "gateway was killed by SIGKILL" in (tmp_path / "supervisor.log").read_text()
        assert "restarted by the supervisor" in (tmp_path / "gateway.log").read_text()
    finally:
        supervisor.stop()
        gateway.stop()
    assert json.loads(status_file.read_text())["children"]["gateway"]["state"] == "stopped"


class Command:
    """A plain child process (here one that fails at once), restartable by the supervisor."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.argv, self.proc = name, argv, None
        self.launches = 0

    def launch(self) -> None:
        self.proc = subprocess.Popen(self.argv)
        self.launches += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def ready(self) -> bool:
        return self.alive


def test_a_service_that_keeps_crashing_is_given_up_after_the_allowed_restarts(tmp_path):
    child = Command("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"])
    child.launch()
    policy = RestartPolicy(max_restarts=3, window_s=120, backoff_initial_s=0.05, backoff_max_s=0.1)
    supervisor = Supervisor({"crasher": child}, policy, status_path=tmp_path / "status.json").start()
    try:
        wait_until(lambda: supervisor.gave_up() == ["crasher"], 60, "the supervisor to give up")
    finally:
        supervisor.stop()
    status = json.loads((tmp_path / "status.json").read_text())["children"]["crasher"]
    assert status["state"] == GAVE_UP and status["restarts"] == 3 and status["exits"] == 4
    assert child.launches == 4 and status["last_exit_code"] == 3
    history = "\n".join(status["history"])
    # exponential backoff, capped: 0.05, 0.1, then 0.1 s (the messages say so; no clock is read here)
    for n, delay in ((1, "0.05"), (2, "0.1"), (3, "0.1")):
        assert f"exited with code 3; restarting in {delay} s (restart {n})" in history, history
    assert "given up after 3 restarts within 120 s" in history
