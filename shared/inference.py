"""The one place onnxruntime is used: sessions, providers, warm-up, checksum checks.

Subclasses of :class:`OnnxModel` only pre- and post-process. Providers are chosen by trying:
CUDA when the installed onnxruntime has it and a GPU answers, else CPU; the one in use is
logged and exported as a metric label.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.settings import ModelSettings

log = logging.getLogger(__name__)


class ModelError(RuntimeError):
    """A model file is missing, altered or unusable; the message says what to do."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """A manifest entry: which file, which checksum, which version."""

    name: str
    path: Path
    sha256: str | None
    version: str
    meta: dict


def card_from_manifest(manifest: Path, name: str | None = None) -> ModelCard:
    """Read an entry of ``manifest.json`` (a ``{"models": {...}}`` map, or one model's own manifest)."""
    if not manifest.exists():
        raise ModelError(f"model manifest {manifest} not found")
    data = json.loads(manifest.read_text())
    entry = data["models"][name] if name is not None else data
    return ModelCard(name or entry.get("version", manifest.parent.name), manifest.parent / entry["file"],
                     entry.get("sha256"), entry["version"], entry)


def gpu_present() -> bool:
    """An NVIDIA driver answers on this machine (onnxruntime lists CUDA whenever its build has it)."""
    return (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()
            or shutil.which("nvidia-smi") is not None)


def choose_providers(preferred: str) -> list[str]:
    available = ort.get_available_providers()
    if preferred == "cpu" or "CUDAExecutionProvider" not in available or not gpu_present():
        return ["CPUExecutionProvider"]
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxModel:
    """An ONNX model loaded once: verified, on the best provider available, warmed up."""

    def __init__(self, card: ModelCard, settings: ModelSettings) -> None:
        if not card.path.exists():
            raise ModelError(f"model file {card.path} not found")
        if settings.verify_checksums and card.sha256 and sha256_of(card.path) != card.sha256:
            raise ModelError(f"{card.path} does not match the sha256 in its manifest: refusing to load it")
        self.card = card
        options = ort.SessionOptions()
        if settings.intra_op_threads:
            options.intra_op_num_threads = settings.intra_op_threads
        options.log_severity_level = 3
        providers = choose_providers(settings.provider)
        try:
            self.session = ort.InferenceSession(str(card.path), options, providers=providers)
        except Exception as exc:  # CUDA listed but unusable: fall back rather than fail
            if providers[0] == "CPUExecutionProvider":
                raise ModelError(f"cannot load {card.path}: {exc}") from exc
            log.warning("CUDA provider failed for %s (%s); using CPU", card.name, exc)
            self.session = ort.InferenceSession(str(card.path), options, providers=["CPUExecutionProvider"])
        self.provider = self.session.get_providers()[0]
        if providers[0] != self.provider:
            log.warning("%s asked for %s but runs on %s", card.name, providers[0], self.provider)
        log.info("loaded %s (%s) on %s", card.name, card.version, self.provider)

    @property
    def version(self) -> str:
        return self.card.version

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)

    def warmup(self) -> None:
        """Subclasses run one representative input so the first request is not the slow one."""
