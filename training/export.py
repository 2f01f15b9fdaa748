"""ONNX export and the models manifest (sha256, version, the command that reproduces a file)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import torch

from shared.inference import sha256_of

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def export_onnx(module: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
                dynamic_axes: dict, opset: int = 17) -> Path:
    """Export with the TorchScript-based exporter into a single self-contained file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    return path


def command_line(module: str) -> str:
    """How to reproduce this run: ``python -m <module> <the same arguments>``."""
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in sys.argv[1:])])


def record(name: str, path: Path, version: str, command: str, extra: dict, manifest: Path | None = None) -> dict:
    """Add or replace one model's entry in the manifest."""
    manifest = manifest or path.parent / "manifest.json"
    data = json.loads(manifest.read_text()) if manifest.exists() else {"models": {}}
    entry = {
        "file": path.name,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "version": version,
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        **extra,
    }
    data["models"][name] = entry
    manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return entry
