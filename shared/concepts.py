"""What a video shows, in words: ImageNet concepts and their place in the text model's space.

ConSE (Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic embeddings"): a
video's class probabilities map to the probability-weighted mean of the text embeddings of its
top-k class names. The mean class vector is subtracted on both sides (videos and queries), so what
all class names share does not count as a match. Topics are chosen zero-shot the same way: the
nearest topic description.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; all-zero rows stay zero."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 1e-9, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def blank_frames(frames: np.ndarray, min_std: float = 4.0) -> np.ndarray:
    """(K,) bool: keyframes with almost no variation (black, a flat colour): they show nothing."""
    if len(frames) == 0:
        return np.zeros(0, bool)
    return frames.reshape(len(frames), -1).std(axis=1) < min_std


def video_probs(probs: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """A video's class probabilities: the mean over its keyframes that show something (zeros if none)."""
    seen = probs[~blank]
    return seen.mean(axis=0) if len(seen) else np.zeros(probs.shape[1], np.float32)


def top_concepts(probs: np.ndarray, classes: Sequence[str], k: int, min_score: float) -> list[tuple[str, float]]:
    """The k most probable classes at or above ``min_score``, best first."""
    order = np.argsort(-probs)[:k]
    return [(classes[i], round(float(probs[i]), 4)) for i in order if probs[i] >= min_score]


@dataclass
class ConceptSpace:
    """The class names embedded by the text model; maps probabilities and texts into one space."""

    vectors: np.ndarray  # (C, D) class-name embeddings
    k: int

    @classmethod
    def build(cls, classes: Sequence[str], embed: Embed, k: int) -> ConceptSpace:
        return cls(np.asarray(embed(list(classes)), np.float32), k)

    @property
    def mean(self) -> np.ndarray:
        return self.vectors.mean(axis=0)

    def videos(self, probs: np.ndarray) -> np.ndarray:
        """(N, C) probabilities -> (N, D) unit ConSE vectors (zero for a video with no probability mass)."""
        out = np.zeros((len(probs), self.vectors.shape[1]), np.float32)
        centred = self.vectors - self.mean
        for i, p in enumerate(probs):
            top = np.argsort(-p)[: self.k]
            mass = float(p[top].sum())
            if mass > 1e-9:
                out[i] = (p[top, None] / mass * centred[top]).sum(axis=0)
        return unit(out)

    def texts(self, text_vectors: np.ndarray) -> np.ndarray:
        """Text embeddings (titles, queries, topic descriptions) centred like the class vectors; empty texts stay zero."""
        present = np.linalg.norm(text_vectors, axis=-1, keepdims=True) > 1e-9
        return unit(np.where(present, text_vectors - self.mean, 0.0))


def search_vectors(concepts: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """What a text query is matched against: a video's concepts and its own words, equal shares."""
    return unit(unit(concepts) + unit(texts))


def votes(similarity: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of cosines to the topics -> rows of topic shares (a softmax at ``temperature``)."""
    z = (similarity - similarity.max(axis=-1, keepdims=True)) / temperature
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class TopicSpace:
    """The platform's topics as data (name and description), chosen zero-shot.

    Every ImageNet class votes for the topic whose description its name is nearest, so a video's
    class probabilities give a distribution over topics; a video's own words (title, tags) vote the
    same way, with equal weight when present. The share of the winning topic is its score.
    """

    names: list[str]
    vectors: np.ndarray  # (T, D) unit description embeddings
    class_votes: np.ndarray  # (C, T) each class's shares of the topics
    temperature: float = 0.05

    @classmethod
    def build(cls, topics: Sequence[tuple[str, str]], embed: Embed, space: ConceptSpace,
              temperature: float = 0.05) -> TopicSpace:
        names = [name for name, _ in topics]
        vectors = unit(np.asarray(embed([f"{name}: {description}" for name, description in topics]), np.float32))
        class_votes = votes(unit(space.vectors) @ vectors.T, temperature) if names else np.zeros((len(space.vectors), 0))
        return cls(names, vectors, class_votes.astype(np.float32), temperature)

    def distribution(self, probs: np.ndarray, words: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities and (N, D) raw word embeddings (zero rows: none) -> (N, T) shares
        (zero rows: nothing to go on)."""
        from_concepts = probs @ self.class_votes
        mass = from_concepts.sum(axis=1, keepdims=True)
        has_words = np.linalg.norm(words, axis=1, keepdims=True) > 1e-9
        from_words = np.where(has_words, votes(unit(words) @ self.vectors.T, self.temperature), 0.0)
        parts = (mass > 1e-9).astype(np.float32) + has_words
        total = np.where(mass > 1e-9, from_concepts / np.maximum(mass, 1e-12), 0.0) + from_words
        return np.where(parts > 0, total / np.maximum(parts, 1), 0.0).astype(np.float32)

    def choose(self, probs: np.ndarray, words: np.ndarray) -> list[tuple[str | None, float]]:
        """Per video, the topic with the largest share and that share; None for a video with nothing to go on."""
        if not self.names:
            return [(None, 0.0)] * len(probs)
        out: list[tuple[str | None, float]] = []
        for row in self.distribution(probs, words):
            best = int(np.argmax(row))
            out.append((self.names[best], round(float(row[best]), 4)) if row.any() else (None, 0.0))
        return out
