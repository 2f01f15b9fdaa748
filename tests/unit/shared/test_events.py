import json
from pathlib import Path

import pytest

import shared
from shared import events, topics
from shared.codec import Rejection, decode, encode, message_key

EXAMPLES = Path(shared.__file__).parent / "examples"


def example_for(model_name: str) -> dict:
    name = "dead-letter" if model_name == "DeadLetter" else next(t.name for t in topics.TOPICS if t.event.__name__ == model_name)
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.mark.parametrize("topic", topics.TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_valid_example(topic):
    model = topic.event
    data = example_for(model.__name__)
    event = model.model_validate(data)
    assert event.schema_version in model.SUPPORTED_VERSIONS
    assert getattr(event, topic.key_field)


def test_dead_letter_example_is_valid():
    letter = events.DeadLetter.model_validate(example_for("DeadLetter"))
    assert letter.reason is events.DeadLetterReason.UNKNOWN_SCHEMA_VERSION


def test_no_example_without_a_topic():
    names = {p.stem for p in EXAMPLES.glob("*.json")}
    assert names == {t.name for t in topics.TOPICS} | {"dead-letter"}


@pytest.mark.parametrize("topic", topics.TOPICS, ids=lambda t: t.name)
def test_encode_decode_round_trip(topic):
    model = topic.event
    event = model.model_validate(example_for(model.__name__))
    assert decode(encode(event), model, 1 << 20) == event
    assert message_key(topic, event) == str(getattr(event, topic.key_field)).encode()


def test_watch_actions_cover_the_signals():
    assert {a.value for a in events.WatchAction} == {
        "impression", "play", "progress", "complete", "like", "share", "skip", "dislike"}


def test_stylize_request_needs_exactly_one_input():
    ops = [{"style": "mosaic"}]
    with pytest.raises(ValueError, match="exactly one"):
        events.StylizeRequested(request_id="r", ops=ops)
    with pytest.raises(ValueError, match="exactly one"):
        events.StylizeRequested(request_id="r", video_id="v", uri="http://example.com/a.mp4", ops=ops)


def test_stylize_ops_parse_to_their_kinds():
    req = events.StylizeRequested.model_validate(example_for("StylizeRequested"))
    assert [type(op).__name__ for op in req.ops] == ["StyleOp", "LutOp", "ColorOp", "EnhanceOp"]
    assert isinstance(decode(b'{"schema_version":1,"request_id":"r","video_id":"v","ops":[{"warp":1}]}',
                             events.StylizeRequested, 1 << 20), Rejection)


def test_generation_limits_are_enforced():
    for bad in ({"count": 0}, {"count": 65}, {"seed": -1}, {"size": 4096}, {"duration_s": 0}, {"kind": "poster"}):
        with pytest.raises(ValueError):
            events.GenerationRequested(request_id="g", topic="travel", **bad)
