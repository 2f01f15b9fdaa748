import asyncio

import numpy as np
import pytest

from services.encoder.core.fusion import fuse
from services.encoder.core.pipeline import duplicate_of
from shared.batching import MicroBatcher


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_fusion_weights_split_the_cosine():
    rng = np.random.default_rng(0)
    va, vb, ta, tb = (unit(rng.normal(size=8)) for _ in range(4))
    w = 0.25
    a, b = fuse([(va, 1 - w), (ta, w)]), fuse([(vb, 1 - w), (tb, w)])
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) == pytest.approx((1 - w) * float(va @ vb) + w * float(ta @ tb), abs=1e-5)


def test_fusion_without_text_keeps_the_visual_similarity():
    rng = np.random.default_rng(1)
    va, vb = unit(rng.normal(size=8)), unit(rng.normal(size=8))
    zero = np.zeros(4, np.float32)
    a, b = fuse([(va, 0.7), (zero, 0.3)]), fuse([(vb, 0.7), (zero, 0.3)])
    assert float(a @ b) == pytest.approx(float(va @ vb), abs=1e-5)


def test_fusion_of_three_parts_splits_the_cosine_by_share():
    rng = np.random.default_rng(2)
    parts_a, parts_b = ([unit(rng.normal(size=n)) for n in (6, 4, 4)] for _ in range(2))
    shares = (0.35, 0.4, 0.25)
    a = fuse(list(zip(parts_a, shares)))
    b = fuse(list(zip(parts_b, shares)))
    expected = sum(s * float(x @ y) for s, x, y in zip(shares, parts_a, parts_b))
    assert float(a @ b) == pytest.approx(expected, abs=1e-5)


def test_duplicate_of_skips_itself_and_respects_the_threshold():
    assert duplicate_of([("v1", 1.0), ("v2", 0.99)], "v1", 0.97) == "v2"
    assert duplicate_of([("v2", 0.95)], "v1", 0.97) is None
    assert duplicate_of([("v1", 1.0)], "v1", 0.97) is None
    assert duplicate_of([], "v1", 0.97) is None


async def test_micro_batcher_serves_concurrent_callers_in_batches():
    calls = []

    def double(items):
        calls.append(list(items))
        return [i * 2 for i in items]

    batcher = MicroBatcher(double, max_batch=4, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    assert sorted(x for c in calls for x in c) == list(range(10))
    assert max(len(c) for c in calls) == 4 and len(calls) < 10


async def test_micro_batcher_passes_errors_to_every_caller():
    def boom(items):
        raise RuntimeError("model failed")

    batcher = MicroBatcher(boom, max_batch=8)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
