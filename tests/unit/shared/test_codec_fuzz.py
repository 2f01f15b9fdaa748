"""Acceptance: arbitrary bytes and arbitrary JSON never raise out of ``decode``, for every topic's model;
whatever it returns is either a valid event of that model or a rejection with a reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import events, topics
from shared.codec import Rejection, decode
from shared.events import DeadLetterReason, Event

MODELS = sorted({t.event for t in topics.TOPICS} | {events.DeadLetter}, key=lambda m: m.__name__)
LIMIT = 1 << 16

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=12,
)


def field_names(model: type[Event]) -> list[str]:
    return sorted(model.model_fields)


def object_like(model: type[Event]):
    """Dicts that look like the model's events: its own field names with arbitrary values, often
    with a supported schema version, so validation (not only the version check) is exercised."""
    keys = st.sampled_from(field_names(model)) | st.text(max_size=12)
    version = st.sampled_from([1, 1, 1, 2, 0, -1, "1", None, [], {}, 1.0, True])
    return st.builds(lambda d, v: {**d, "schema_version": v}, st.dictionaries(keys, json_values, max_size=8), version)


def check(out, model) -> None:
    assert isinstance(out, (model, Rejection)), type(out)
    if isinstance(out, Rejection):
        assert isinstance(out.reason, DeadLetterReason) and out.detail


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(model, raw):
    check(decode(raw, model, LIMIT), model)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_arbitrary_json_never_raises(model, value):
    raw = json.dumps(value).encode()
    check(decode(raw, model, LIMIT), model)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.data())
def test_event_shaped_json_never_raises(model, value):
    raw = json.dumps(value.draw(object_like(model))).encode()
    check(decode(raw, model, LIMIT), model)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@given(depth=st.integers(min_value=900, max_value=60_000), opener=st.sampled_from(["[", '{"a":']))
@settings(max_examples=10, deadline=None)
def test_nesting_of_any_depth_never_raises(model, depth, opener):
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "0" + closer * depth).encode()
    check(decode(raw, model, 1 << 22), model)
