import json

from shared.codec import Rejection, decode, describe_validation_error
from shared.events import DeadLetterReason, WatchEvent

GOOD = {"schema_version": 1, "user_id": "u1", "video_id": "v1", "action": "play"}


def reason(raw: bytes | None, max_bytes: int = 1 << 20) -> DeadLetterReason:
    out = decode(raw, WatchEvent, max_bytes)
    assert isinstance(out, Rejection), out
    return out.reason


def test_valid_event_decodes():
    event = decode(json.dumps(GOOD).encode(), WatchEvent, 1 << 20)
    assert isinstance(event, WatchEvent) and event.user_id == "u1" and event.event_id


def test_unknown_fields_are_ignored_by_consumers():
    event = decode(json.dumps({**GOOD, "new_optional_field": 3}).encode(), WatchEvent, 1 << 20)
    assert isinstance(event, WatchEvent)


def test_malformed_json():
    assert reason(b"{not json") is DeadLetterReason.MALFORMED_JSON
    assert reason(b"\xff\xfe") is DeadLetterReason.MALFORMED_JSON
    assert reason(b"[1, 2]") is DeadLetterReason.MALFORMED_JSON
    assert reason(None) is DeadLetterReason.MALFORMED_JSON


def test_unknown_or_missing_schema_version():
    assert reason(json.dumps({**GOOD, "schema_version": 2}).encode()) is DeadLetterReason.UNKNOWN_SCHEMA_VERSION
    no_version = {k: v for k, v in GOOD.items() if k != "schema_version"}
    out = decode(json.dumps(no_version).encode(), WatchEvent, 1 << 20)
    assert isinstance(out, Rejection) and "None" in out.detail


def test_missing_field_names_the_field():
    data = {k: v for k, v in GOOD.items() if k != "video_id"}
    out = decode(json.dumps(data).encode(), WatchEvent, 1 << 20)
    assert isinstance(out, Rejection)
    assert out.reason is DeadLetterReason.INVALID_EVENT
    assert "video_id" in out.detail


def test_oversized_is_refused_before_parsing():
    raw = json.dumps({**GOOD, "pad": "x" * 5000}).encode()
    assert reason(raw, max_bytes=1024) is DeadLetterReason.OVERSIZED


def test_validation_error_description_is_bounded():
    try:
        WatchEvent.model_validate({"schema_version": 1, "action": "nope", "watch_ms": -1, "user_id": "", "video_id": ""})
    except ValueError as exc:
        text = describe_validation_error(exc, limit=2)
    assert text.count(";") == 2 and "more" in text


def test_deeply_nested_json_is_a_rejection_not_a_crash():
    depth = 100_000
    assert reason(b"[" * depth + b"]" * depth) is DeadLetterReason.MALFORMED_JSON
    nested = b'{"schema_version": 1, "user_id": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    assert reason(nested) is DeadLetterReason.MALFORMED_JSON


def test_unhashable_or_lookalike_schema_version_is_unknown():
    for version in ([], {}, [1], "1", True, 1.0, None):
        raw = json.dumps({**GOOD, "schema_version": version}).encode()
        assert reason(raw) is DeadLetterReason.UNKNOWN_SCHEMA_VERSION, version


def test_a_time_far_in_the_future_has_its_own_reason():
    out = decode(json.dumps({**GOOD, "ts": "9999-12-31T23:59:59Z"}).encode(), WatchEvent, 1 << 20)
    assert isinstance(out, Rejection) and out.reason is DeadLetterReason.FUTURE_TIMESTAMP
    assert "ahead of the wall clock" in out.detail


def test_a_time_without_zone_is_utc_and_a_past_time_is_kept():
    event = decode(json.dumps({**GOOD, "ts": "2020-01-02T03:04:05"}).encode(), WatchEvent, 1 << 20)
    assert isinstance(event, WatchEvent) and event.ts.utcoffset().total_seconds() == 0
    assert event.ts.year == 2020 and event.ts.hour == 3
