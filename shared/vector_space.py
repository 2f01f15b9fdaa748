"""The video and search vector sizes and the model version, read from the prepared models' manifests.

The encoder (``services/encoder/engine.py``) fuses three unit parts into a video's vector: the
backbone's pooled features, its concepts in the text model's space and its title and tags in that
space; its search vector is concepts and words in the text model's space. So the sizes follow from
the two manifests (``dims.features`` of the backbone, ``dim`` of the text model) and a consumer of
``videos.embedded`` (the recommender) knows them without loading a model. A unit test holds these
numbers to the engine's own (``tests/unit/shared/test_vector_space.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from shared.backbone import backbone_dir
from shared.inference import ModelError
from shared.settings import ModelSettings
from shared.text import text_model_dir

POOLING = "mean"
"""How the encoder pools keyframe features over time; part of the model version."""
TEXT_DIM_DEFAULT = 384
"""The text model's size when its manifest does not say (as ``shared/text.py`` reads it)."""


def model_version(backbone: str, text: str) -> str:
    """The version string of what the encoder writes: its backbone, its pooling and its text model."""
    return f"{backbone}+{POOLING}+{text}"


def model_id(version: str) -> str:
    """A short stable id of a model version (collection names carry it: a new model gets new collections)."""
    return hashlib.sha256(version.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class ModelSpace:
    """What the current models write to ``videos.embedded``: version string and vector sizes."""

    version: str
    video_dim: int
    search_dim: int

    @property
    def id(self) -> str:
        return model_id(self.version)

    def collections(self, prefix: str) -> tuple[str, str]:
        """The Qdrant collections of this model under ``prefix`` (video vectors, search vectors): a new model
        gets new ones, so a server never holds vectors of two sizes in one collection."""
        return f"{prefix}-{self.id}", f"{prefix}-{self.id}-search"


def _manifest(folder: Path, what: str) -> dict:
    path = folder / "manifest.json"
    if not path.exists():
        raise ModelError(f"the {what} is not prepared in {folder}: run `clipstream models prepare` (make setup does it)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}): run `clipstream models prepare --force`") from exc


def model_space(models: ModelSettings) -> ModelSpace:
    """Version and sizes of the prepared backbone and text model (their manifests; no model is loaded)."""
    backbone = _manifest(backbone_dir(models), "frame backbone")
    text = _manifest(text_model_dir(models), "text model")
    try:
        features = int(backbone["dims"]["features"])
        text_dim = int(text.get("dim", TEXT_DIM_DEFAULT))
        version = model_version(backbone["version"], text["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"a model manifest in {models.cache_dir} lacks {exc}: run `clipstream models prepare --force`"
                         ) from exc
    return ModelSpace(version, features + 2 * text_dim, text_dim)
