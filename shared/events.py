"""Versioned event contracts, one pydantic model per topic.

Each model carries ``schema_version``. A consumer accepts only the versions listed in
``SUPPORTED_VERSIONS`` of its model; anything else goes to the dead-letter topic with the
reason ``unknown_schema_version``. Consumers are tolerant readers (unknown fields are
ignored) so producers may add optional fields without a version bump; removing or
changing a field needs a new version.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
TopicName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
CoverPath = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^covers/[A-Za-z0-9][A-Za-z0-9_.:@-]*\.jpg$")]
"""A cover image under the artefacts folder: ``covers/<video id>-<rank>.jpg`` (no absolute path, no ``..``)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


MAX_FUTURE_SKEW = timedelta(minutes=5)
"""How far an event's time may lie ahead of the receiver's wall clock (clock skew between hosts);
later is refused: a 422 at the gateway, ``future_timestamp`` in the dead-letter topic."""
FUTURE_TIMESTAMP = "future_timestamp"  # the validation error type the codec maps to its dead-letter reason


def _bounded_time(value: datetime) -> datetime:
    """A time without a zone is UTC; one beyond the wall clock plus :data:`MAX_FUTURE_SKEW` is refused."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    limit = utcnow() + MAX_FUTURE_SKEW
    if value > limit:
        raise PydanticCustomError(
            FUTURE_TIMESTAMP, "time {value} is more than {skew_s} s ahead of the wall clock ({now})",
            {"value": value.isoformat(), "skew_s": int(MAX_FUTURE_SKEW.total_seconds()),
             "now": utcnow().isoformat(timespec="seconds")})
    return value


EventTime = Annotated[datetime, AfterValidator(_bounded_time)]
"""A point in time carried by an event: timezone-aware, never far in the future."""


def new_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """Base of every event on the bus."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    schema_version: Literal[1] = 1


class UploadFields(BaseModel):
    """What a platform says about an upload; shared by the HTTP request and the event."""

    source: Annotated[str, Field(min_length=1, max_length=2048)]
    """A path relative to the media root, or an http(s) URL."""
    title: Annotated[str, Field(max_length=300)] = ""
    tags: Annotated[list[Tag], Field(max_length=32)] = []
    topic: TopicName | None = None
    creator_id: Identifier


class VideoUploaded(Event, UploadFields):
    """An upload registered by a platform backend (topic ``videos.uploaded``)."""

    video_id: Identifier
    uploaded_at: EventTime = Field(default_factory=utcnow)


class Concept(BaseModel):
    """Something a video shows: an ImageNet class name and its mean probability over the keyframes."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    score: Annotated[float, Field(ge=0, le=1)]


class VideoEmbedded(Event):
    """A video's vector and the metadata services filter on (topic ``videos.embedded``)."""

    video_id: Identifier
    vector: Annotated[list[float], Field(min_length=1, max_length=4096)]
    model_version: Annotated[str, Field(min_length=1, max_length=128)]
    search_vector: Annotated[list[float], Field(max_length=1024)] = []
    """Concepts and words in the text model's space (empty: nothing a text query could match)."""
    concepts: Annotated[list[Concept], Field(max_length=50)] = []
    title: str = ""
    tags: list[Tag] = []
    topic: TopicName | None = None
    creator_id: Identifier
    duration_s: Annotated[float, Field(ge=0)]
    keyframes: Annotated[int, Field(ge=0)] = 0
    thumbnail: str | None = None
    covers: Annotated[list[CoverPath], Field(max_length=10)] = []
    """Cover candidates, best first: paths relative to the encoder's artefacts folder (never absolute)."""
    duplicate_of: Identifier | None = None
    created_at: EventTime = Field(default_factory=utcnow)


class WatchAction(StrEnum):
    IMPRESSION = "impression"
    PLAY = "play"
    PROGRESS = "progress"
    COMPLETE = "complete"
    LIKE = "like"
    SHARE = "share"
    SKIP = "skip"
    DISLIKE = "dislike"


class WatchFields(BaseModel):
    """What a client reports about one interaction; shared by the HTTP request and the event."""

    user_id: Identifier
    video_id: Identifier
    action: WatchAction
    watch_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)] = 0
    duration_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)] | None = None
    session_id: Identifier | None = None


class WatchEvent(Event, WatchFields):
    """One thing a user did with a video (topic ``watch.events``, keyed by user_id)."""

    event_id: Identifier = Field(default_factory=new_id)
    ts: EventTime = Field(default_factory=utcnow)


GenerationKind = Literal["cover", "frames", "clip"]


class GenerationRequested(Event):
    """A request for generated images or a clip of a topic (topic ``generation.requests``)."""

    request_id: Identifier
    topic: TopicName
    kind: GenerationKind = "cover"
    count: Annotated[int, Field(ge=1, le=64)] = 1
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    size: Annotated[int, Field(ge=32, le=1024)] = 512
    duration_s: Annotated[float, Field(gt=0, le=30)] = 3.0
    fps: Annotated[int, Field(ge=1, le=60)] = 24


class GenerationCompleted(Event):
    """Result of a generation request (topic ``generation.completed``)."""

    request_id: Identifier
    status: Literal["ok", "failed"]
    topic: TopicName | None = None
    kind: GenerationKind | None = None
    artefacts: list[str] = []
    model_version: str | None = None
    error: str | None = None
    elapsed_ms: Annotated[float, Field(ge=0)] = 0.0
    completed_at: EventTime = Field(default_factory=utcnow)


class InsightsRequested(Event, UploadFields):
    """An upload to analyse for creator insights without publishing it (topic ``insights.requests``): the
    encoder fetches, decodes and embeds it, and never adds it to the catalogue."""

    request_id: Identifier


class InsightsCompleted(Event):
    """What the encoder made of an unpublished upload (topic ``insights.completed``): its vector and cover
    candidates, for the gateway to ask the recommenders about; or why it failed (the reason of ``videos.uploaded``'s
    dead letters)."""

    request_id: Identifier
    status: Literal["ok", "failed"]
    creator_id: Identifier
    title: str = ""
    tags: list[Tag] = []
    topic: TopicName | None = None
    vector: Annotated[list[float], Field(max_length=4096)] = []
    model_version: str | None = None
    concepts: Annotated[list[Concept], Field(max_length=50)] = []
    covers: Annotated[list[CoverPath], Field(max_length=10)] = []
    error: str | None = None
    elapsed_ms: Annotated[float, Field(ge=0)] = 0.0
    completed_at: EventTime = Field(default_factory=utcnow)


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StyleOp(_Op):
    style: Annotated[str, Field(min_length=1, max_length=64)]
    strength: Annotated[float, Field(ge=0, le=1)] = 1.0


class LutOp(_Op):
    lut: Annotated[str, Field(min_length=1, max_length=256)]


class ColorParams(_Op):
    white_balance: bool = False
    exposure: Annotated[float, Field(ge=-3, le=3)] = 0.0
    contrast: Annotated[float, Field(ge=0, le=3)] = 1.0
    saturation: Annotated[float, Field(ge=0, le=3)] = 1.0
    clahe: bool = False
    look: Annotated[str, Field(max_length=64)] | None = None


class ColorOp(_Op):
    color: ColorParams


class EnhanceParams(_Op):
    denoise: Annotated[float, Field(ge=0, le=1)] = 0.0
    sharpen: Annotated[float, Field(ge=0, le=1)] = 0.0
    upscale: Literal[1, 2] = 1


class EnhanceOp(_Op):
    enhance: EnhanceParams


StylizeOperation = StyleOp | LutOp | ColorOp | EnhanceOp


class StylizeRequested(Event):
    """A request to process a whole video (topic ``stylize.requests``)."""

    request_id: Identifier
    video_id: Identifier | None = None
    uri: Annotated[str, Field(max_length=2048)] | None = None
    ops: Annotated[list[StylizeOperation], Field(min_length=1, max_length=16)]

    @model_validator(mode="after")
    def _one_input(self) -> StylizeRequested:
        if (self.video_id is None) == (self.uri is None):
            raise ValueError("give exactly one of video_id or uri")
        return self


class StylizeCompleted(Event):
    """Progress or result of a stylization request (topic ``stylize.completed``)."""

    request_id: Identifier
    status: Literal["running", "ok", "failed"]
    progress: Annotated[float, Field(ge=0, le=1)] = 0.0
    output: str | None = None
    error: str | None = None
    elapsed_ms: Annotated[float, Field(ge=0)] = 0.0
    completed_at: EventTime = Field(default_factory=utcnow)


class DeadLetterReason(StrEnum):
    """Bounded set of reasons; the metric label takes these values only."""

    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    INVALID_EVENT = "invalid_event"
    REJECTED = "rejected"
    """The handler refused the event (bad input it detected, e.g. unsafe path)."""
    PROCESSING_ERROR = "processing_error"
    FUTURE_TIMESTAMP = "future_timestamp"
    """A time field lies further ahead of the wall clock than ``MAX_FUTURE_SKEW`` allows."""


class DeadLetter(Event):
    """A message a consumer could not handle (topic ``<topic>.dlq``), with everything to replay it."""

    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    payload_b64: str
    """The original message bytes, base64-encoded (cut at the consumer's size limit)."""
    payload_size: Annotated[int, Field(ge=0)] = 0
    """Length of the original message; larger than the decoded payload when it was cut."""
    reason: DeadLetterReason
    detail: Annotated[str, Field(max_length=4000)]
    service: str
    failed_at: datetime = Field(default_factory=utcnow)
