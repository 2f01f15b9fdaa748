"""Text queries into the search space: content words decide whether there is anything to match."""

from __future__ import annotations

import numpy as np
import pytest

from shared.search import QueryEncoder, content_words
from shared.settings import EncoderSettings, ModelSettings


@pytest.mark.parametrize(("query", "words"), [
    ("a cup of coffee", ["cup", "coffee"]),
    ("The  OF and, a?!", []),
    ("", []),
    ("videos of dogs", ["dogs"]),
    ("café au lait", ["café", "au", "lait"]),
    ("snake_case__", ["snake", "case"]),
])
def test_content_words(query: str, words: list[str]) -> None:
    assert content_words(query) == words


@pytest.fixture(scope="module")
def queries() -> QueryEncoder:
    return QueryEncoder(ModelSettings(), EncoderSettings())


def test_queries_become_unit_vectors_and_stop_words_none(queries: QueryEncoder) -> None:
    coffee, nothing, cat = queries.vectors(["a cup of coffee", "the of and", "a cat on a sofa"])
    assert nothing is None
    assert coffee.shape == (queries.dim,) and np.isclose(np.linalg.norm(coffee), 1.0, atol=1e-5)
    assert float(coffee @ cat) < 0.9  # different queries, different vectors


def test_a_query_is_nearer_its_own_concept_than_another(queries: QueryEncoder) -> None:
    classes = ["espresso", "tabby", "golden retriever"]
    vectors = queries.space.texts(queries.text.embed(classes))
    [coffee] = queries.vectors(["a cup of coffee"])
    scores = vectors @ coffee
    assert int(np.argmax(scores)) == 0, (classes, scores)
