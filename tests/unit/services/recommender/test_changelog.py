"""The changelog's record format: rows round-trip exactly, and anything else is a ChangelogError."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.recommender.changelog import (
    ChangelogError,
    decode_row,
    encode_rows,
    encode_user,
    restore,
)
from services.recommender.core.user_state import Step
from services.recommender.rows import Rows
from tests.unit.services.recommender.changelog_fakes import MemoryChangelog


def test_rows_round_trip_exactly():
    vector = np.random.default_rng(0).normal(size=16).astype(np.float32).tobytes()
    rows = Rows(users=[("u1", '{"events": 3}', vector, None, vector), ("u2", "{}", None, None, None)],
                user_steps=[("u3", [Step("e1", 1.7e9 + 0.1, "s1", "v1", 1.2345678901234567, True, True),
                                    Step("e2", 1.7e9 + 7.3, None, "v9", -0.5, False, False)])],
                popularity=[("v1", 1.25, 1.7e9, 3.0, 0.75)], covisit=[("v1", {"v2": 2.0, "v3": 1.0})],
                transitions=[("v2", {"v1": 1.5, "v3": 0.25})], trends=[("topic:cats", {"2900000": 3.0})],
                ranker=(np.arange(4, dtype=np.float64).tobytes(), 7))
    back = Rows()
    for key, value in encode_rows(rows):
        decode_row(key, value, back)
    assert back == rows
    skipped = Rows()
    for key, value in encode_rows(rows):
        decode_row(key, value, skipped, users=False)
    assert skipped.users == [] and skipped.user_steps == [] and skipped.popularity == rows.popularity


def test_a_popularity_row_from_a_build_without_hot_scores_reads_with_hot_zero():
    back = Rows()
    decode_row(b"p/v1", b"[1.25, 1700000000.0, 3.0]", back)
    assert back.popularity == [("v1", 1.25, 1.7e9, 3.0, 0.0)]


@pytest.mark.parametrize(("key", "value"), [
    (b"u/u1", encode_user("{}", b"1234")[:-2]),  # cut short
    (b"u/u1", encode_user("{}", None, None, None) + b"x"),  # bytes after its fields
    (b"u/u1", b"\xff\xff"),
    (b"u/u1", encode_user("[]", None, None, None)),  # fields that are not an object
    (b"p/v1", b"[1, 2]"),
    (b"p/v1", b"[1, 2, 3, 4, 5]"),
    (b"p/v1", b"not json"),
    (b"c/v1", b"[1]"),
    (b"t/v1", b"[0.5]"),
    (b"h/topic:cats", b'{"2900000": -2}'),
    (b"c/v1", b'{"v2": -1.0}'),  # a weight below 0 (0 itself: the pair is gone)
    (b"t/v1", b'{"v2": "x"}'),
    (b"r", b'{"w": 3, "n": 1}'),
    (b"x/what", b"{}"),
    (b"s/u1", b'{"e1": 1}'),  # steps that are not arrays
    (b"s/u1", b'[["e1", 1.0, null, "v1", 1.0, true]]'),  # a field short
    (b"s/u1", b'[["e1", 1.0, null, "v1", 1.0, 1, true]]'),  # a flag that is not a boolean
    (b"s/u1", b'[["e1", "1.0", null, "v1", 1.0, true, true]]'),  # a time that is text
    (b"s/u1", b'[["e1", 1.0, null, "v1", true, true, true]]'),  # a weight that is a boolean
    (b"s/u1", b'[["e1", 1e999, null, "v1", 1.0, true, true]]'),  # a time that is not finite
    (b"s/u1", b'[[7, 1.0, null, "v1", 1.0, true, true]]'),  # an event id that is not text
    (None, b"{}"),
    (b"p/v1", None),
])
def test_anything_else_is_a_changelog_error(key, value):
    with pytest.raises(ChangelogError, match="undecodable changelog record"):
        decode_row(key, value, Rows())


def test_a_log_of_deltas_alone_restores_its_patches_onto_nothing():
    """Before a partition's first snapshot its log holds deltas only; their neighbour rows are patches, so the
    restore applies them pair by pair from empty rows (a weight 0 removes a pair, an emptied row is gone)."""
    log = MemoryChangelog()
    flushes = [Rows(covisit=[("a", {"b": 2.0, "c": 1.0})], transitions=[("a", {"b": 2520.0})], next_offset=3),
               Rows(covisit=[("a", {"c": 0.0, "d": 4.0}), ("e", {"a": 1.0})], next_offset=5),
               Rows(covisit=[("e", {"a": 0.0})], transitions=[("a", {"b": 5040.0})], next_offset=8)]
    for rows in flushes:
        asyncio.run(log.write(0, rows, full=False, generation=1))
    restored = restore(log.logs[0])
    assert restored.rows.covisit == [("a", {"b": 2.0, "d": 4.0})]
    assert restored.rows.transitions == [("a", {"b": 5040.0})]
    assert restored.rows.next_offset == 8 and restored.marker.entries == 3 + 3 + 2
