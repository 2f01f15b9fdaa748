"""HTTP request and response bodies. Strict (unknown fields are errors) so clients see typos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Identifier, Tag, TopicName, WatchAction, new_id


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoUploadIn(_In):
    video_id: Identifier = Field(default_factory=new_id)
    source: Annotated[str, Field(min_length=1, max_length=2048,
                                 description="A path relative to the media root, or an http(s) URL")]
    title: Annotated[str, Field(max_length=300)] = ""
    tags: Annotated[list[Tag], Field(max_length=32)] = []
    topic: TopicName | None = None
    creator_id: Identifier


class WatchEventIn(_In):
    event_id: Identifier = Field(default_factory=new_id)
    user_id: Identifier
    video_id: Identifier
    action: WatchAction
    watch_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)] = 0
    duration_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)] | None = None
    session_id: Identifier | None = None
    ts: datetime | None = None


class WatchBatchIn(_In):
    events: Annotated[list[dict[str, Any]], Field(min_length=1)]


class Accepted(BaseModel):
    id: str
    topic: str
    status: str = "accepted"


class Rejected(BaseModel):
    index: int
    error: str


class BatchAccepted(BaseModel):
    topic: str
    accepted: int
    rejected: list[Rejected] = []
