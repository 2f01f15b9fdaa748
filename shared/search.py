"""Text queries to search vectors: the one path the recommender's /v1/search and the evaluation use.

A query is embedded by the text model and centred like the class names (``shared/concepts.py``), so
it lands in the space the encoder's search vectors live in. A query with no content word (only stop
words or punctuation) has nothing to match and gets no vector: the caller answers an empty result.
"""

from __future__ import annotations

import json
import re

import numpy as np

from shared.backbone import backbone_dir
from shared.concepts import ConceptSpace
from shared.inference import ModelError
from shared.settings import EncoderSettings, ModelSettings
from shared.text import TextEmbedder

STOP_WORDS = frozenset("""
a an and are as at be been but by can could did do does for from had has have how i if in into is it its
me my no not of on or our so than that the their them then there these they this those to too up us was
we were what when where which who why will with would you your video videos clip clips show shows showing
""".split())
WORD = re.compile(r"[^\W_]+", re.UNICODE)


def content_words(query: str) -> list[str]:
    return [w for w in WORD.findall(query.lower()) if w not in STOP_WORDS]


class QueryEncoder:
    """Embeds text queries into the search space of the prepared backbone and text model."""

    def __init__(self, models: ModelSettings, encoder: EncoderSettings, text: TextEmbedder | None = None) -> None:
        self.text = text or TextEmbedder(models)
        classes = backbone_dir(models) / "classes.json"
        if not classes.exists():
            raise ModelError(f"{classes} not found: run `clipstream models prepare`")
        self.space = ConceptSpace.build(json.loads(classes.read_text()), self.text.embed, encoder.concepts_k)

    @property
    def dim(self) -> int:
        return self.text.dim

    def vectors(self, queries: list[str]) -> list[np.ndarray | None]:
        """A unit vector per query, or None for a query with no content word."""
        keep = [i for i, q in enumerate(queries) if content_words(q)]
        out: list[np.ndarray | None] = [None] * len(queries)
        if keep:
            vecs = self.space.texts(self.text.embed([queries[i] for i in keep]))
            for i, v in zip(keep, vecs):
                out[i] = v
        return out
