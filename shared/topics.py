"""The one registry of topics: names, message keys, partitions and dead-letter topics.

Every producer and consumer names topics through this module, never with a string
literal, so that a rename or a partition change happens in one place. A topic carries its
event class: ``consume`` decodes with it and ``publish`` refuses any other type.

Each service's app declares what it reads and writes with :class:`Consumes` and
:class:`Publishes` (``CONSUMES`` and ``PUBLISHES`` in ``services/<name>/app.py``); the AsyncAPI
document is generated from those declarations and a unit test holds them to the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import events
from shared.events import Event

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and the contract around it."""

    name: str
    key_field: str
    """Event field whose value is the message key (ordering is per key)."""
    partitions: int
    event: type[Event]
    """The pydantic model (of ``shared.events``) every message of this topic is."""
    description: str

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


VIDEOS_UPLOADED = Topic(
    "videos.uploaded", "video_id", 3, events.VideoUploaded,
    "A platform registered an upload; the encoder fetches, decodes and embeds it.",
)
VIDEOS_EMBEDDED = Topic(
    "videos.embedded", "video_id", 3, events.VideoEmbedded,
    "A video's vector and metadata; services that need vectors build their view from it.",
)
WATCH_EVENTS = Topic(
    "watch.events", "user_id", 6, events.WatchEvent,
    "What users did with videos; keyed by user_id so each user's events stay in order.",
)
GENERATION_REQUESTS = Topic(
    "generation.requests", "request_id", 2, events.GenerationRequested,
    "Requests for generated covers, frames or clips of a topic.",
)
GENERATION_COMPLETED = Topic(
    "generation.completed", "request_id", 2, events.GenerationCompleted,
    "Results of generation requests, with artefact paths.",
)
STYLIZE_REQUESTS = Topic(
    "stylize.requests", "request_id", 2, events.StylizeRequested,
    "Requests to stylize, colour-grade or enhance a whole video.",
)
STYLIZE_COMPLETED = Topic(
    "stylize.completed", "request_id", 2, events.StylizeCompleted,
    "Results (and progress) of stylization requests.",
)

INSIGHTS_REQUESTS = Topic(
    "insights.requests", "request_id", 2, events.InsightsRequested,
    "Unpublished uploads to analyse for creator insights (embedded, never added to the catalogue).",
)
INSIGHTS_COMPLETED = Topic(
    "insights.completed", "request_id", 2, events.InsightsCompleted,
    "What the encoder made of an unpublished upload: its vector and cover candidates, or why it failed.",
)

TOPICS: tuple[Topic, ...] = (
    VIDEOS_UPLOADED,
    VIDEOS_EMBEDDED,
    WATCH_EVENTS,
    GENERATION_REQUESTS,
    GENERATION_COMPLETED,
    STYLIZE_REQUESTS,
    STYLIZE_COMPLETED,
    INSIGHTS_REQUESTS,
    INSIGHTS_COMPLETED,
)

DLQ_PARTITIONS = 1


@dataclass(frozen=True)
class Consumes:
    """A service reads ``topic`` (a subscription made with ``shared.consumer.consume``)."""

    topic: Topic
    group: str
    """Consumer group; ``<...>`` marks a part made at start-up (one group per instance)."""
    note: str = ""
    """What the service does with each message (for the AsyncAPI document)."""


@dataclass(frozen=True)
class Publishes:
    """A service writes ``topic`` (with ``shared.publisher.publish`` or ``publish_many``)."""

    topic: Topic
    note: str = ""
    """When it sends (for the AsyncAPI document)."""


def by_name(name: str) -> Topic:
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in TOPICS)}")


def all_topic_partitions() -> dict[str, int]:
    """Every topic the platform uses, dead-letter topics included, with its partition count."""
    out = {t.name: t.partitions for t in TOPICS}
    out.update({t.dlq: DLQ_PARTITIONS for t in TOPICS})
    return out
