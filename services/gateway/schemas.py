"""HTTP request and response bodies. Strict (unknown fields are errors) so clients see typos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events import GenerationRequested, Identifier, StylizeRequested, UploadFields, WatchFields, new_id


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoUploadIn(_In, UploadFields):
    video_id: Identifier = Field(default_factory=new_id)


class WatchEventIn(_In, WatchFields):
    event_id: Identifier = Field(default_factory=new_id)
    ts: datetime | None = None
    """When it happened on the client; the gateway's clock when absent."""


class WatchBatchIn(_In):
    events: Annotated[list[dict[str, Any]], Field(min_length=1)]


class StylizeIn(_In, StylizeRequested):
    """A stylization request: exactly one of video_id or uri, and the ordered operations."""

    request_id: Identifier = Field(default_factory=new_id)


class GenerateIn(_In, GenerationRequested):
    """A generation request: topic, kind (cover, frames, clip), count, seed, size, duration_s, fps."""

    request_id: Identifier = Field(default_factory=new_id)


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
