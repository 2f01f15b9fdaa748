"""Concepts: what the pretrained backbone sees in real photographs, and the arithmetic that maps class
probabilities and texts into one space (shared/concepts.py).

The clips are made here from the photographs in scikit-image's wheel (devkit/photo_clips.py): nothing
is downloaded. For each, at least one of the ImageNet classes an ImageNet classifier should rank in
its top 5 for that photo (``PHOTOS[name].concepts``) must be among the concepts the encoder shows.
Clips that show nothing (all black) or almost nothing (16x16 pixels) must still embed.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from services.encoder.engine import Embedded, EncoderEngine
from shared.concepts import (
    ConceptSpace,
    TopicSpace,
    blank_frames,
    search_vectors,
    top_concepts,
    unit,
    video_probs,
)
from shared.settings import Settings

# --- the engine on real photographs ------------------------------------------------------------------

def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def engine() -> EncoderEngine:
    settings = Settings()
    return EncoderEngine(settings.models, settings.encoder, settings.media)


@pytest.fixture(scope="module")
def photos(engine, tmp_path_factory) -> dict[str, Embedded]:
    """Every photo clip, embedded with an empty title (one batch: the engine loads once)."""
    pytest.importorskip("skimage")
    from devkit.photo_clips import make_photo_clips

    clips = make_photo_clips(tmp_path_factory.mktemp("photos"), seconds=2.0, seed=0)
    done = engine.embed_files(list(clips.values()), [""] * len(clips))
    return {name: embedded for name, (_, embedded) in zip(clips, done)}


def _photo_names() -> list[str]:
    try:
        from devkit.photo_clips import PHOTOS
    except ImportError:  # scikit-image is a dev dependency; the fixture skips
        return ["chelsea"]
    return list(PHOTOS)


def assert_embeds(e: Embedded, dim: int) -> None:
    assert e.vector.shape == (dim,) and np.all(np.isfinite(e.vector))
    assert np.isclose(np.linalg.norm(e.vector), 1.0, atol=1e-5)
    assert np.all(np.isfinite(e.visual)) and np.isclose(np.linalg.norm(e.visual), 1.0, atol=1e-5)
    assert np.all(np.isfinite(e.search))
    assert np.isclose(np.linalg.norm(e.search), 1.0, atol=1e-5) or not e.search.any()


@pytest.mark.parametrize("name", _photo_names())
def test_each_photo_clip_shows_a_concept_a_classifier_should_see(engine, photos, name):
    from devkit.photo_clips import PHOTOS

    e = photos[name]
    shown = [concept for concept, _ in e.concepts]
    assert 0 < len(shown) <= engine.settings.concepts_shown
    assert set(shown) & set(PHOTOS[name].concepts), f"{name}: shown {e.concepts}, expected one of {PHOTOS[name].concepts}"
    scores = [score for _, score in e.concepts]
    assert scores == sorted(scores, reverse=True) and all(engine.settings.concept_min_score <= s <= 1 for s in scores)
    assert set(shown) <= set(engine.backbone.classes)
    assert_embeds(e, engine.dim)
    # an empty title: the search vector is the concepts alone, so a text query has something to match
    assert e.search.any() and e.topic in engine.settings.topics


def test_different_photos_give_different_vectors(photos, engine):
    names = list(photos)
    vectors = np.stack([photos[n].vector for n in names])
    cosines = vectors @ vectors.T
    off = cosines[~np.eye(len(names), dtype=bool)]
    assert off.max() < engine.settings.duplicate_threshold, "two different photos would be flagged as duplicates"


def test_a_clip_of_black_frames_still_embeds_with_no_concept(engine, tmp_path):
    black = write_clip(tmp_path / "black.mp4", [np.zeros((48, 64, 3), np.uint8)] * 12)
    [(analysis, e)] = engine.embed_files([black], [""])
    assert len(analysis.keyframes.times_s) >= 1
    assert_embeds(e, engine.dim)
    assert e.concepts == [], "black frames show nothing"
    assert not e.search.any() and e.topic is None, "nothing a text query could match"


def test_a_black_clip_with_a_title_is_searchable_by_its_words(engine, tmp_path):
    black = write_clip(tmp_path / "black.mp4", [np.zeros((48, 64, 3), np.uint8)] * 12)
    [(_, e)] = engine.embed_files([black], ["cooking pasta at home"])
    assert_embeds(e, engine.dim)
    assert e.concepts == [] and e.search.any() and e.topic in engine.settings.topics


def test_a_16x16_clip_still_embeds(engine, tmp_path):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    frames = [np.roll(base, i, axis=1) for i in range(10)]
    tiny = write_clip(tmp_path / "tiny.mp4", frames)
    [(analysis, e)] = engine.embed_files([tiny], [""])
    assert analysis.info.width == 16 and analysis.info.height == 16
    assert_embeds(e, engine.dim)
    assert len(e.concepts) <= engine.settings.concepts_shown


# --- shared/concepts.py, with small hand-made arrays ---------------------------------------------------

def test_unit_scales_rows_and_keeps_zero_rows_zero():
    out = unit(np.array([[3.0, 4.0], [0.0, 0.0], [1e-12, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0], [0, 0]], atol=1e-7)
    np.testing.assert_allclose(unit(np.array([0.0, 2.0])), [0.0, 1.0])
    assert not np.isnan(unit(np.zeros((2, 3)))).any()


def test_blank_frames_are_black_or_flat():
    rng = np.random.default_rng(0)
    frames = np.stack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8),
                       rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
                       np.full((8, 8, 3), 100, np.uint8) + rng.integers(0, 3, (8, 8, 3), dtype=np.uint8)])
    assert blank_frames(frames).tolist() == [True, True, False, True]
    assert blank_frames(frames, min_std=0.5).tolist() == [True, True, False, False]
    assert blank_frames(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0,)


def test_video_probs_average_the_frames_that_show_something():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]], np.float32)
    np.testing.assert_allclose(video_probs(probs, np.array([False, True, False])), [0.45, 0.05, 0.5])
    np.testing.assert_allclose(video_probs(probs, np.zeros(3, bool)), probs.mean(axis=0))
    nothing = video_probs(probs, np.ones(3, bool))
    assert nothing.shape == (3,) and not nothing.any()


def test_top_concepts_best_first_at_most_k_above_the_threshold():
    classes = ["cup", "cat", "car", "cow"]
    probs = np.array([0.1, 0.6, 0.04, 0.26])
    assert top_concepts(probs, classes, 3, 0.05) == [("cat", 0.6), ("cow", 0.26), ("cup", 0.1)]
    assert top_concepts(probs, classes, 2, 0.0) == [("cat", 0.6), ("cow", 0.26)]
    assert top_concepts(probs, classes, 4, 0.3) == [("cat", 0.6)]
    assert top_concepts(probs, classes, 0, 0.0) == []
    assert top_concepts(np.zeros(4), classes, 3, 0.05) == []
    assert top_concepts(np.array([1 / 3, 0, 0, 0]), classes, 1, 0.0) == [("cup", 0.3333)]


# three classes in a 2-D text space: their mean is (1/3, 1/3)
CLASS_VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
MEAN = CLASS_VECTORS.mean(axis=0)


def fake_embed(texts):
    table = {"cup": [1.0, 0.0], "cat": [0.0, 1.0], "void": [0.0, 0.0], "": [0.0, 0.0],
             "drinks: coffee and tea": [0.9, 0.1], "pets: cats and dogs": [0.1, 0.9]}
    return np.array([table[t] for t in texts], np.float32)


def test_concept_space_is_built_from_the_class_names():
    space = ConceptSpace.build(["cup", "cat", "void"], fake_embed, k=2)
    np.testing.assert_allclose(space.vectors, CLASS_VECTORS)
    np.testing.assert_allclose(space.mean, MEAN)
    assert space.k == 2


def test_concept_space_maps_probabilities_to_the_weighted_centred_class_vectors():
    space = ConceptSpace(CLASS_VECTORS, k=2)
    centred = CLASS_VECTORS - MEAN
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.5, 0.3, 0.2]], np.float32)
    out = space.videos(probs)
    assert out.shape == (4, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], unit(centred[0]), atol=1e-6)
    np.testing.assert_allclose(out[1], unit(0.5 * centred[0] + 0.5 * centred[1]), atol=1e-6)
    assert not out[2].any(), "no probability mass: a zero vector"
    # k=2: the third class is left out and the top two renormalised
    np.testing.assert_allclose(out[3], unit(0.625 * centred[0] + 0.375 * centred[1]), atol=1e-6)
    assert np.allclose(np.linalg.norm(out[[0, 1, 3]], axis=1), 1.0)


def test_concept_space_centres_texts_like_the_classes_and_keeps_empty_texts_zero():
    space = ConceptSpace(CLASS_VECTORS, k=2)
    out = space.texts(np.array([[1.0, 0.0], [0.0, 0.0], [1 / 3, 1 / 3 + 1.0]], np.float32))
    np.testing.assert_allclose(out[0], unit(np.array([1.0, 0.0]) - MEAN), atol=1e-6)
    assert not out[1].any(), "an empty text stays zero, not minus the mean"
    np.testing.assert_allclose(out[2], [0.0, 1.0], atol=1e-6)
    # a text and the class it names are nearest in the centred space
    videos = space.videos(np.eye(3, dtype=np.float32)[:2])
    assert int(np.argmax(videos @ out[0])) == 0


def test_search_vectors_give_concepts_and_words_equal_shares():
    concepts = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]], np.float32)
    words = np.array([[0.0, 5.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    out = search_vectors(concepts, words)
    np.testing.assert_allclose(out[0], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(out[1], [1.0, 0.0], atol=1e-6)  # no words: the concepts alone
    assert not out[2].any()


def test_topics_are_chosen_zero_shot_and_none_for_nothing():
    space = ConceptSpace(CLASS_VECTORS, k=2)
    topics = TopicSpace.build([("drinks", "coffee and tea"), ("pets", "cats and dogs")], fake_embed, space)
    assert topics.names == ["drinks", "pets"]
    assert np.allclose(np.linalg.norm(topics.vectors, axis=1), 1.0)
    assert np.allclose(topics.class_votes.sum(axis=1), 1.0)
    n_classes = len(CLASS_VECTORS)
    probs = np.zeros((4, n_classes), np.float32)
    probs[0, 0] = 1.0  # a video that shows class 0 and has no words
    probs[3, 0] = 1.0  # the same, with words
    words = np.zeros((4, CLASS_VECTORS.shape[1]), np.float32)
    words[1] = fake_embed(["cat"])[0]  # words only
    words[3] = fake_embed(["cat"])[0]
    chosen = topics.choose(probs, words)
    nearest = int(np.argmax(unit(CLASS_VECTORS[:1]) @ topics.vectors.T))
    assert chosen[0][0] == topics.names[nearest]
    assert chosen[2] == (None, 0.0), "no concepts and no words: no topic"
    shares = topics.distribution(probs, words)
    assert np.allclose(shares[[0, 1, 3]].sum(axis=1), 1.0) and not shares[2].any()
    np.testing.assert_allclose(shares[3], (shares[0] + shares[1]) / 2, atol=1e-6)  # equal weight
    assert all(0 < score <= 1 for _, score in [chosen[0], chosen[1], chosen[3]])
    empty = TopicSpace.build([], fake_embed, space)
    assert empty.choose(probs[:1], words[:1]) == [(None, 0.0)]
