"""``clipstream models``: list, verify, and prepare the models made at setup."""

from __future__ import annotations

import json

from shared.inference import sha256_of
from shared.settings import ModelSettings
from shared.text import text_model_dir


def run_models(action: str, force: bool = False) -> int:
    settings = ModelSettings()
    if action == "prepare":
        folder = text_model_dir(settings)
        manifest = folder / "manifest.json"
        if manifest.exists() and not force:
            entry = json.loads(manifest.read_text())
            if (folder / entry["file"]).exists() and sha256_of(folder / entry["file"]) == entry["sha256"]:
                print(f"text model ready in {folder} ({entry['version']})")
                return 0
        try:
            from training.export_text import export_text_model
        except ImportError as exc:
            raise SystemExit(f"preparing the text model needs the train extra (torch): {exc}; run `make setup`")
        entry = export_text_model(folder)
        print(f"text model exported to {folder}: {entry['bytes']} bytes, "
              f"cosine vs sentence-transformers >= {entry['min_cosine_vs_sentence_transformers']}")
        return 0
    bad = 0
    rows = []
    for manifest in [settings.dir / "manifest.json", *sorted(settings.dir.glob("*/manifest.json"))]:
        for name, entry in json.loads(manifest.read_text())["models"].items():
            rows.append((name, manifest.parent / entry["file"], entry))
    text_manifest = text_model_dir(settings) / "manifest.json"
    if text_manifest.exists():
        entry = json.loads(text_manifest.read_text())
        rows.append(("text", text_manifest.parent / entry["file"], entry))
    for name, path, entry in rows:
        ok = path.exists() and (action != "verify" or sha256_of(path) == entry["sha256"])
        bad += not ok
        status = ("ok" if ok else "MISMATCH") if action == "verify" else ("present" if ok else "missing")
        print(f"{name:16} {entry['version']:24} {status:9} {path}  ({entry.get('command', '')})")
    if not text_manifest.exists():
        print("text             (not prepared)           run `clipstream models prepare`")
    return 1 if bad else 0
