"""The changelog's record format: rows round-trip exactly, and anything else is a ChangelogError."""

from __future__ import annotations

import numpy as np
import pytest

from services.recommender.changelog import (
    ChangelogError,
    decode_row,
    encode_rows,
    encode_user,
)
from services.recommender.rows import Rows


def test_rows_round_trip_exactly():
    vector = np.random.default_rng(0).normal(size=16).astype(np.float32).tobytes()
    rows = Rows(users=[("u1", '{"events": 3}', vector, None, vector), ("u2", "{}", None, None, None)],
                popularity=[("v1", 1.25, 1.7e9, 3.0)], covisit=[("v1", {"v2": 2.0, "v3": 1.0})],
                transitions=[("v2", {"v1": 1.5, "v3": 0.25})],
                ranker=(np.arange(4, dtype=np.float64).tobytes(), 7))
    back = Rows()
    for key, value in encode_rows(rows):
        decode_row(key, value, back)
    assert back == rows
    skipped = Rows()
    for key, value in encode_rows(rows):
        decode_row(key, value, skipped, users=False)
    assert skipped.users == [] and skipped.popularity == rows.popularity


@pytest.mark.parametrize(("key", "value"), [
    (b"u/u1", encode_user("{}", b"1234")[:-2]),  # cut short
    (b"u/u1", encode_user("{}", None, None, None) + b"x"),  # bytes after its fields
    (b"u/u1", b"\xff\xff"),
    (b"u/u1", encode_user("[]", None, None, None)),  # fields that are not an object
    (b"p/v1", b"[1, 2]"),
    (b"p/v1", b"not json"),
    (b"c/v1", b"[1]"),
    (b"t/v1", b"[0.5]"),
    (b"c/v1", b'{"v2": -1.0}'),  # a weight below 0 (0 itself: the pair is gone)
    (b"t/v1", b'{"v2": "x"}'),
    (b"r", b'{"w": 3, "n": 1}'),
    (b"x/what", b"{}"),
    (None, b"{}"),
    (b"p/v1", None),
])
def test_anything_else_is_a_changelog_error(key, value):
    with pytest.raises(ChangelogError, match="undecodable changelog record"):
        decode_row(key, value, Rows())
