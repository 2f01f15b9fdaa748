"""Restarting crashed child processes, the way a process manager does (the demo's services).

Each child is watched by its own thread. When one exits, the supervisor waits an exponential
backoff (``backoff_initial_s``, doubling per restart within the window, at most ``backoff_max_s``),
starts it again with the same command, port and log file, and waits for its readiness probe. A
child that needs more than ``max_restarts`` restarts within ``window_s`` seconds is given up on
(state ``gave up``), as systemd's StartLimitBurst or supervisord's startretries would: it crashes
for a reason that a restart does not fix. Every exit, restart and give-up is counted per child,
logged, reported to ``on_change`` and, with ``status_path``, written to a JSON status file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

RUNNING, RESTARTING, STARTING, GAVE_UP, STOPPED = "running", "restarting", "starting", "gave up", "stopped"


class Child(Protocol):
    """A child process the supervisor can (re)start and probe."""

    name: str

    def launch(self) -> None: ...

    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    def ready(self) -> bool: ...


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    """Most restarts within ``window_s``; the next exit gives the child up."""
    window_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    ready_timeout_s: float = 120.0
    """A restarted child not ready after this long is stopped and counts as another exit."""
    poll_s: float = 0.2

    def backoff(self, recent_restarts: int) -> float:
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** recent_restarts)

    def describe(self) -> str:
        return (f"restart with backoff {self.backoff_initial_s:g} s doubling to {self.backoff_max_s:g} s; "
                f"give up after {self.max_restarts} restarts within {self.window_s:g} s")


@dataclass
class ChildStatus:
    name: str
    state: str = RUNNING
    pid: int | None = None
    restarts: int = 0
    """Restarts so far (each one after an exit)."""
    exits: int = 0
    last_exit_code: int | None = None
    last_exit_at: str | None = None
    last_restart_at: str | None = None
    history: list[str] = field(default_factory=list)
    """What happened, one line per event, oldest first."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        import signal

        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Watches ``children`` (already started) from background threads; :meth:`stop` ends the watching."""

    def __init__(self, children: Mapping[str, Child], policy: RestartPolicy | None = None, *,
                 on_change: Callable[[ChildStatus, str], None] | None = None, status_path: Path | None = None,
                 log_path: Path | None = None) -> None:
        self.children = dict(children)
        self.policy = policy or RestartPolicy()
        self.on_change = on_change
        self.status_path = status_path
        self.log_path = log_path
        self.status = {name: ChildStatus(name, pid=child.pid) for name, child in self.children.items()}
        self.version = 0
        """Goes up at every change (a cheap way for a caller's loop to notice one)."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --------------------------------------------------------------- lifecycle

    def start(self) -> Supervisor:
        self._write_status()
        for name in self.children:
            thread = threading.Thread(target=self._watch, args=(name,), name=f"supervise-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop watching (the children keep running: their owner stops them)."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for status in self.status.values():
                if status.state != GAVE_UP:
                    status.state = STOPPED
        self._write_status()

    # --------------------------------------------------------------- queries

    def snapshot(self) -> dict[str, ChildStatus]:
        with self._lock:
            return {name: ChildStatus(**asdict(s)) for name, s in self.status.items()}

    def gave_up(self) -> list[str]:
        with self._lock:
            return [name for name, s in self.status.items() if s.state == GAVE_UP]

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {name: s.restarts for name, s in self.status.items()}

    def wait_settled(self, timeout_s: float) -> bool:
        """Until no child is between an exit and being ready again; True when all are running (or stopped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                busy = [s for s in self.status.values() if s.state in (RESTARTING, STARTING)]
            if not busy:
                return True
            time.sleep(self.policy.poll_s)
        return False

    # --------------------------------------------------------------- the watch loop

    def _watch(self, name: str) -> None:
        child, policy = self.children[name], self.policy
        restarted_at: deque[float] = deque()
        while not self._stop.is_set():
            if child.alive:
                self._stop.wait(policy.poll_s)
                continue
            if self._stop.is_set():
                return  # the owner is stopping everything: an exit now is expected
            code = child.returncode
            now = time.monotonic()
            while restarted_at and now - restarted_at[0] > policy.window_s:
                restarted_at.popleft()
            with self._lock:
                status = self.status[name]
                status.exits += 1
                status.last_exit_code, status.last_exit_at = code, _now()
            if len(restarted_at) >= policy.max_restarts:
                self._change(name, GAVE_UP, f"{name} {describe_exit(code)}; given up after {len(restarted_at)} "
                                            f"restarts within {policy.window_s:g} s", logging.ERROR)
                return
            delay = policy.backoff(len(restarted_at))
            self._change(name, RESTARTING, f"{name} {describe_exit(code)}; restarting in {delay:g} s "
                                           f"(restart {self.status[name].restarts + 1})", logging.WARNING)
            if self._stop.wait(delay):
                return
            self._append_log(child, f"--- {_now()} restarted by the supervisor after it {describe_exit(code)} ---\n")
            child.launch()
            restarted_at.append(time.monotonic())
            with self._lock:
                status.restarts += 1
                status.pid, status.last_restart_at = child.pid, _now()
            self._change(name, STARTING, f"{name} started again (pid {child.pid}), waiting until it is ready")
            self._await_ready(name, child)

    def _await_ready(self, name: str, child: Child) -> None:
        deadline = time.monotonic() + self.policy.ready_timeout_s
        while not self._stop.is_set():
            if not child.alive:
                return  # exited again: the watch loop counts it
            if child.ready():
                self._change(name, RUNNING, f"{name} is ready again (pid {child.pid}, restart "
                                            f"{self.status[name].restarts})")
                return
            if time.monotonic() > deadline:
                self._change(name, RESTARTING, f"{name} not ready {self.policy.ready_timeout_s:g} s after a "
                                               "restart; stopping it", logging.WARNING)
                stop = getattr(child, "terminate", None)
                if stop is not None:
                    stop()
                return
            self._stop.wait(self.policy.poll_s)

    # --------------------------------------------------------------- reporting

    def _change(self, name: str, state: str, message: str, level: int = logging.INFO) -> None:
        with self._lock:
            status = self.status[name]
            status.state = state
            status.history.append(f"{_now()} {message}")
            del status.history[:-20]
            self.version += 1
            copy = ChildStatus(**asdict(status))
        log.log(level, "%s", message)
        if self.log_path is not None:
            with open(self.log_path, "a", encoding="utf-8") as out:
                out.write(f"{_now()} {logging.getLevelName(level)} {message}\n")
        self._write_status()
        if self.on_change is not None:
            self.on_change(copy, message)

    def _append_log(self, child: Child, line: str) -> None:
        path = getattr(child, "log_path", None)
        if path is not None:
            with open(path, "a", encoding="utf-8") as out:
                out.write(line)

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        with self._lock:
            data = {"updated_at": _now(), "policy": asdict(self.policy),
                    "children": {name: asdict(s) for name, s in self.status.items()}}
        tmp = self.status_path.with_name(f".{self.status_path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.status_path)
