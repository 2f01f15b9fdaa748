"""The encoder's models together: keyframes and text in, vectors, concepts and a topic out.

Per video: the pretrained backbone's features of each keyframe, mean-pooled over time (a trained
self-attention pooling measured no better on real clips, see the README), and its ImageNet class
probabilities averaged over the keyframes that show something. Three unit parts are fused into the
video vector (visual features, concepts in the text model's space, title and tags); the search
vector (concepts and words, in the text model's space) is what text queries are matched against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.encoder.core.fusion import fuse
from services.encoder.core.pipeline import Analysis, analyse
from shared.backbone import Backbone
from shared.concepts import (ConceptSpace, TopicSpace, blank_frames, search_vectors, top_concepts, unit,
                             video_probs)
from shared.settings import EncoderSettings, MediaSettings, ModelSettings
from shared.text import TextEmbedder
from shared.vector_space import ModelSpace, model_version


@dataclass(frozen=True)
class Embedded:
    vector: np.ndarray  # fused, L2-normalised
    visual: np.ndarray  # pooled backbone features, L2-normalised
    search: np.ndarray  # concepts and words in the text model's space, L2-normalised (zero: nothing to match)
    topic: str | None
    topic_score: float
    concepts: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class VectorSpace(ModelSpace):
    """What a model version writes: its name, sizes and the encoder's collections for it."""

    collection: str = ""
    search_collection: str = ""

    @classmethod
    def of(cls, space: ModelSpace, prefix: str) -> VectorSpace:
        """``space`` with its collections under ``prefix`` (``ModelSpace.collections``)."""
        return cls(space.version, space.video_dim, space.search_dim, *space.collections(prefix))


class EncoderEngine:
    def __init__(self, models: ModelSettings, encoder: EncoderSettings, media: MediaSettings) -> None:
        self.settings = encoder
        self.backbone = Backbone(models, batch=encoder.max_batch)
        self.text = TextEmbedder(models)
        self.concepts = ConceptSpace.build(self.backbone.classes, self.text.embed, encoder.concepts_k)
        self.topics = TopicSpace.build(list(encoder.topics.items()), self.text.embed, self.concepts)
        self.media = media.model_copy(update={"frame_size": self.backbone.size, "frame_fit": self.backbone.fit})
        self.version = model_version(self.backbone.version, self.text.version)
        self.dim = self.backbone.feature_dim + 2 * self.text.dim
        self.space = VectorSpace.of(ModelSpace(self.version, self.dim, self.text.dim), encoder.collection)

    def warmup(self) -> None:
        self.backbone.warmup()
        self.text.warmup()

    def embed_batch(self, items: Sequence[tuple[np.ndarray, str]]) -> list[Embedded]:
        """items: (keyframes (K, S, S, 3) uint8, description text) per video; one backbone call for all."""
        if not items:
            return []
        clips = [frames for frames, _ in items]
        feats, probs = self.backbone.frames(np.concatenate(clips))
        bounds = np.cumsum([0, *(len(c) for c in clips)])
        visual = unit(np.stack([feats[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]))
        video = np.stack([video_probs(probs[a:b], blank_frames(c)) for a, b, c in zip(bounds[:-1], bounds[1:], clips)])
        concept = self.concepts.videos(video)
        raw_words = self.text.embed([t for _, t in items])
        words = self.concepts.texts(raw_words)
        search = search_vectors(concept, words)
        s = self.settings
        fused = fuse([(visual, 1 - s.text_weight - s.concept_weight), (concept, s.concept_weight),
                            (words, s.text_weight)])
        topics = self.topics.choose(video, raw_words)
        return [Embedded(fused[i], visual[i], search[i], topics[i][0], topics[i][1],
                         top_concepts(video[i], self.backbone.classes, s.concepts_shown, s.concept_min_score))
                for i in range(len(items))]

    def embed_files(self, paths: Sequence[Path], texts: Sequence[str], artefacts: Path | None = None) -> list[tuple[Analysis, Embedded]]:
        """The service's path without the bus: analyse each file, embed them in batches."""
        analyses = [analyse(p, self.media, artefacts) for p in paths]
        results: list[Embedded] = []
        step = self.settings.max_batch
        for start in range(0, len(analyses), step):
            chunk = [(a.keyframes.frames, t) for a, t in zip(analyses[start:start + step], texts[start:start + step])]
            results += self.embed_batch(chunk)
        return list(zip(analyses, results))
