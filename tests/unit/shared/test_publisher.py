"""publish and publish_many send an event only to the topic of its type, through FastStream's in-memory TestKafkaBroker."""

import pytest
from faststream.kafka import TestKafkaBroker

from shared import topics
from shared.bus import make_broker
from shared.events import VideoUploaded, WatchEvent
from shared.metrics import published_counter
from shared.publisher import WrongEventType, publish, publish_many
from shared.settings import KafkaSettings

UPLOAD = VideoUploaded(video_id="vid-1", source="uploads/vid-1.mp4", title="Surf", topic="sports", creator_id="c-1")


def watch(n: int) -> WatchEvent:
    return WatchEvent(user_id="user-1", video_id=f"vid-{n}", action="play")


@pytest.fixture
def sent():
    """A broker with a subscriber on watch.events and videos.uploaded; returns it and what each received."""
    broker = make_broker("unit-pub", KafkaSettings())
    received: dict[str, list[dict]] = {topics.WATCH_EVENTS.name: [], topics.VIDEOS_UPLOADED.name: []}
    for name, got in received.items():
        broker.subscriber(name)(_collect(got))
    return broker, received


def _collect(into: list[dict]):
    async def collect(body: dict) -> None:
        into.append(body)

    return collect


def published(topic: topics.Topic) -> float:
    return published_counter("unit-pub").labels(topic.name)._value.get()


async def test_an_event_of_the_topics_class_is_sent(sent):
    broker, received = sent
    before = published(topics.WATCH_EVENTS)
    async with TestKafkaBroker(broker):
        await publish(broker, topics.WATCH_EVENTS, watch(1), "unit-pub")
        await publish_many(broker, topics.WATCH_EVENTS, [watch(2), watch(3)], "unit-pub")
    assert [m["video_id"] for m in received[topics.WATCH_EVENTS.name]] == ["vid-1", "vid-2", "vid-3"]
    assert published(topics.WATCH_EVENTS) - before == 3


async def test_publish_refuses_an_event_of_another_class(sent):
    broker, received = sent
    before = published(topics.WATCH_EVENTS)
    async with TestKafkaBroker(broker):
        with pytest.raises(TypeError, match=r"watch\.events carries WatchEvent events, not VideoUploaded"):
            await publish(broker, topics.WATCH_EVENTS, UPLOAD, "unit-pub")
        with pytest.raises(WrongEventType, match="not dict"):
            await publish(broker, topics.WATCH_EVENTS, watch(1).model_dump(mode="json"), "unit-pub")
    assert received[topics.WATCH_EVENTS.name] == []
    assert published(topics.WATCH_EVENTS) == before


async def test_publish_many_sends_nothing_when_one_event_is_of_another_class(sent):
    broker, received = sent
    async with TestKafkaBroker(broker):
        with pytest.raises(TypeError, match=r"videos\.uploaded carries VideoUploaded events, not WatchEvent"):
            await publish_many(broker, topics.VIDEOS_UPLOADED, [UPLOAD, watch(1)], "unit-pub")
        # the same events, each to the topic of its class, go through
        await publish_many(broker, topics.VIDEOS_UPLOADED, [UPLOAD], "unit-pub")
        await publish_many(broker, topics.WATCH_EVENTS, [watch(1)], "unit-pub")
    assert [m["video_id"] for m in received[topics.VIDEOS_UPLOADED.name]] == ["vid-1"]
    assert [m["video_id"] for m in received[topics.WATCH_EVENTS.name]] == ["vid-1"]

