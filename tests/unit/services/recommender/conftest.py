"""A small catalogue for the recommender's unit tests: 12 videos in an 8-dimensional space, 3 topics, 4 creators."""

from __future__ import annotations

import numpy as np
import pytest

from services.recommender.core.catalogue import Catalogue, VideoInfo
from shared.vectors import EdgeVectorStore

DIM = 8


@pytest.fixture
def catalogue(tmp_path):
    store = EdgeVectorStore(tmp_path / "videos", DIM)
    cat = Catalogue(store)
    rng = np.random.default_rng(0)
    for i in range(12):
        cat.add(VideoInfo(f"v{i}", f"t{i % 3}", f"c{i % 4}", 1e9, None, f"video {i}"), rng.normal(size=DIM))
    yield cat
    store.close()
