"""The one registry of topics: names, message keys, partitions and dead-letter topics.

Every producer and consumer names topics through this module, never with a string
literal, so that a rename or a partition change happens in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and the contract around it."""

    name: str
    key_field: str
    """Event field whose value is the message key (ordering is per key)."""
    partitions: int
    event: str
    """Name of the pydantic model in ``shared.events`` carried by this topic."""
    description: str

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


VIDEOS_UPLOADED = Topic(
    "videos.uploaded", "video_id", 3, "VideoUploaded",
    "A platform registered an upload; the encoder fetches, decodes and embeds it.",
)
VIDEOS_EMBEDDED = Topic(
    "videos.embedded", "video_id", 3, "VideoEmbedded",
    "A video's vector and metadata; services that need vectors build their view from it.",
)
WATCH_EVENTS = Topic(
    "watch.events", "user_id", 6, "WatchEvent",
    "What users did with videos; keyed by user_id so each user's events stay in order.",
)
GENERATION_REQUESTS = Topic(
    "generation.requests", "request_id", 2, "GenerationRequested",
    "Requests for generated covers, frames or clips of a topic.",
)
GENERATION_COMPLETED = Topic(
    "generation.completed", "request_id", 2, "GenerationCompleted",
    "Results of generation requests, with artefact paths.",
)
STYLIZE_REQUESTS = Topic(
    "stylize.requests", "request_id", 2, "StylizeRequested",
    "Requests to stylize, colour-grade or enhance a whole video.",
)
STYLIZE_COMPLETED = Topic(
    "stylize.completed", "request_id", 2, "StylizeCompleted",
    "Results (and progress) of stylization requests.",
)

TOPICS: tuple[Topic, ...] = (
    VIDEOS_UPLOADED,
    VIDEOS_EMBEDDED,
    WATCH_EVENTS,
    GENERATION_REQUESTS,
    GENERATION_COMPLETED,
    STYLIZE_REQUESTS,
    STYLIZE_COMPLETED,
)

DLQ_PARTITIONS = 1


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
