"""HTTP request and response bodies. Strict (unknown fields are errors) so clients see typos.

Request bodies are also validated in pydantic's strict mode against the raw JSON (see
``services/gateway/strict.py``): ``"seed": false``, ``"count": "3"`` or ``"ts": 0`` are refused, not
coerced, so the OpenAPI document is exactly what the gateway accepts.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventTime, GenerationRequested, Identifier, StylizeRequested, UploadFields, WatchFields, new_id


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoUploadIn(_In, UploadFields):
    video_id: Identifier = Field(default_factory=new_id)


class WatchEventIn(_In, WatchFields):
    event_id: Identifier = Field(default_factory=new_id)
    """Set it to make a retry safe: the recommender applies one event id once (see README, HTTP API)."""
    ts: EventTime | None = None
    """When it happened on the client (RFC 3339, e.g. 2024-05-01T12:00:00Z); the gateway's clock when absent."""


class WatchBatchIn(_In):
    events: Annotated[list[dict[str, Any]], Field(min_length=1)]
    """Watch events as for POST /v1/events/watch; each is validated on its own."""


class StylizeIn(_In, StylizeRequested):
    """A stylization request: exactly one of video_id or uri, and the ordered operations."""

    # the event model ignores unknown fields (tolerant reader); a request must not. The schema also
    # says what the model's validator checks: exactly one of video_id and uri is given (not null)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["video_id"], "properties": {"video_id": {"type": "string"}}},
        {"required": ["uri"], "properties": {"uri": {"type": "string"}}},
    ]})
    request_id: Identifier = Field(default_factory=new_id)


class GenerateIn(_In, GenerationRequested):
    """A generation request: topic, kind (cover, frames, clip), count, seed, size, duration_s, fps."""

    model_config = ConfigDict(extra="forbid")
    request_id: Identifier = Field(default_factory=new_id)


class InsightsUploadIn(_In, UploadFields):
    """An upload to analyse for creator insights without publishing it: the same fields as POST /v1/videos."""
    request_id: Identifier = Field(default_factory=new_id)


class InsightsIn(_In):
    """A creator insight request: a video already uploaded (and embedded)."""
    video_id: Identifier
    window_days: Annotated[float, Field(gt=0, le=365)] | None = Field(
        None, description="the audience: users active in this many days (default: the recommender's "
                          "insights_window_days)")


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


class ErrorItem(BaseModel):
    loc: list[str | int]
    """Where: ``body``, ``path``, ``query`` or ``header``, then field names and list indexes."""
    msg: str
    type: str


class Error(BaseModel):
    """Every 4xx and 5xx answer of the gateway: a reason a person can act on."""

    detail: str
    errors: list[ErrorItem] | None = None
    """For 422: each problem found (at most 20)."""


def _error(description: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": Error, "description": description}
    if headers:
        doc["headers"] = {name: {"description": text, "schema": {"type": "integer" if name == "Retry-After" else "string"}}
                          for name, text in headers.items()}
    return doc


RETRY_AFTER = {"Retry-After": "Seconds to wait before trying again"}
UNAUTHORIZED = {401: _error("Missing or wrong API key (checked before the body is read)",
                            {"WWW-Authenticate": "ApiKey"})}
TOO_MANY = {429: _error("This API key's request rate is over its limit", RETRY_AFTER)}
TOO_LARGE = {413: _error("The body (or a batch) is larger than the gateway's limit")}
INVALID = {422: _error("The request is invalid: the reason, and for schema errors each problem in errors")}
INVALID_WRITE = {422: _error("The request is invalid, with the reason (and for schema errors each problem in errors); "
                             "also for what a schema cannot say: a source that is not a readable file under the media "
                             "root or a public http(s) URL, a generation over the pixel budget, a time too far ahead")}
INTERNAL = {500: _error("An unexpected error (logged and counted; never caused by input alone)")}


def write_responses() -> dict[int | str, dict[str, Any]]:
    """What a POST route may answer besides 202."""
    return {**UNAUTHORIZED, **TOO_LARGE, **INVALID_WRITE, **TOO_MANY,
            503: _error("The event bus is unavailable; nothing was published: retry later with the same ids",
                        RETRY_AFTER),
            **INTERNAL}


def read_responses(upstream: str, not_found: str | None = None,
                   unavailable: str | None = None) -> dict[int | str, dict[str, Any]]:
    """What a forwarded GET route may answer besides 200 (``unavailable``: the 503's description)."""
    out: dict[int | str, dict[str, Any]] = {**UNAUTHORIZED, **TOO_LARGE, **INVALID, **TOO_MANY}
    if not_found:
        out[404] = _error(not_found)
    out[502] = _error(f"The {upstream} failed to answer the request")
    out[503] = _error(unavailable or f"The {upstream} is unavailable (not running, not reachable, or timed out)",
                      RETRY_AFTER)
    out.update(INTERNAL)
    return out
