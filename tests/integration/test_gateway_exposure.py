"""Issue 14, finding 8: a gateway without keys of its own does not listen where other hosts can reach it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.runtime.broker import free_port


@pytest.mark.parametrize("keys", [None, ""])
def test_a_gateway_without_api_keys_refuses_a_non_loopback_address(broker, tmp_path, keys):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSTREAM_GATEWAY_")}
    env.update({"CLIPSTREAM_GATEWAY_HOST": "0.0.0.0", "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(tmp_path / "media"),
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap})  # a broker that answers: nothing else stops it
    if keys is not None:
        env["CLIPSTREAM_GATEWAY_API_KEYS"] = keys
    proc = subprocess.run([sys.executable, "-m", "cli.main", "run", "gateway", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert "refusing to start: CLIPSTREAM_GATEWAY_API_KEYS" in proc.stderr, proc.stderr
    assert "0.0.0.0" in proc.stderr and not (tmp_path / "media").exists()
