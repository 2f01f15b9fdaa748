"""Routes: validate, turn the request into an event, publish. No other logic lives here."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from shared import topics
from shared.codec import describe_validation_error
from shared.events import GenerationRequested, InsightsRequested, StylizeRequested, VideoUploaded, WatchEvent
from shared.jobs import RequestError
from shared.publisher import WrongEventType, publish_many
from shared.safety import UnsafeSource, check_source
from services.gateway.auth import ApiKey, CreatorScope
from services.gateway.insights import refuse_unless
from services.gateway.limits import SERVICE, rejected_requests
from services.gateway.outage import BusState
from services.gateway.schemas import (Accepted, BatchAccepted, GenerateIn, InsightsUploadIn, Rejected, _error, StylizeIn, VideoUploadIn, WatchBatchIn,
                                     WatchEventIn, write_responses)
from services.gateway.strict import StrictJSONRoute, integral_floats_as_ints, request_errors
from shared.budget import check_budget

router = APIRouter(prefix="/v1", route_class=StrictJSONRoute, responses=write_responses())


def make_event(model, **fields):
    """The event for a validated request; what the event model alone refuses (a time far ahead) is a 422."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise RequestValidationError(request_errors(exc)) from None


def to_watch_event(body: WatchEventIn) -> WatchEvent:
    return WatchEvent(**body.model_dump(exclude_none=True))


def unavailable(bus: BusState, detail: str) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": str(bus.retry_after_s)})


async def _publish(request: Request, topic: topics.Topic, events: list) -> None:
    bus: BusState = request.app.state.bus
    if bus.down:  # known down: answer now rather than wait for the broker's timeout again
        bus.refused += 1
        raise unavailable(bus, f"event bus unavailable ({bus.reason}); nothing was published, retry later "
                               "with the same ids")
    try:
        await publish_many(request.app.state.broker, topic, events, SERVICE)
    except WrongEventType:  # a bug here, not an outage: a 500, and the bus is not marked down
        raise
    except Exception as exc:  # broker unreachable or refusing: the client should retry
        bus.mark_down(type(exc).__name__)
        raise unavailable(bus, f"event bus unavailable: {type(exc).__name__}; retry later with the same ids") from exc


async def _check_source(request: Request, source: str) -> None:
    fetch = request.app.state.fetch  # the media root and allowed hosts the encoder and stylization fetch with
    try:
        await asyncio.to_thread(check_source, source, fetch.media_root, fetch.allowed_url_hosts)
    except UnsafeSource as exc:
        rejected_requests().labels("unsafe_source").inc()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"source refused: {exc}") from exc


async def _accept(request: Request, topic: topics.Topic, event, event_id: str) -> Accepted:
    await _publish(request, topic, [event])
    return Accepted(id=event_id, topic=topic.name)


@router.post("/videos", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted, tags=["videos"],
             summary="Register an uploaded video for ingestion")
async def register_video(body: VideoUploadIn, request: Request, _: ApiKey) -> Accepted:
    await _check_source(request, body.source)
    event = make_event(VideoUploaded, **body.model_dump())
    return await _accept(request, topics.VIDEOS_UPLOADED, event, event.video_id)


@router.post("/insights/uploads", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted, tags=["insights"],
             summary="Analyse an unpublished upload for creator insights (poll GET /v1/insights/uploads/{id})",
             responses={403: _error("A creator's key, and another creator's upload")})
async def request_upload_insights(body: InsightsUploadIn, request: Request, scope: CreatorScope) -> Accepted:
    refuse_unless(scope, body.creator_id, f"an upload of creator {body.creator_id!r}")
    await _check_source(request, body.source)
    event = make_event(InsightsRequested, **body.model_dump())
    return await _accept(request, topics.INSIGHTS_REQUESTS, event, event.request_id)


@router.post("/events/watch", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted, tags=["events"],
             summary="Record one watch event")
async def record_watch(body: WatchEventIn, request: Request, _: ApiKey) -> Accepted:
    event = make_event(WatchEvent, **body.model_dump(exclude_none=True))
    return await _accept(request, topics.WATCH_EVENTS, event, event.event_id)


def _batch_item(raw: object) -> WatchEvent:
    """One event of a batch, held to the same strict rules as POST /v1/events/watch."""
    try:
        body = WatchEventIn.model_validate_json(json.dumps(integral_floats_as_ints(raw)), strict=True)
        return to_watch_event(body)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


@router.post("/events/watch/batch", status_code=status.HTTP_202_ACCEPTED, response_model=BatchAccepted,
             tags=["events"], summary="Record many watch events; invalid ones are listed, valid ones kept")
async def record_watch_batch(body: WatchBatchIn, request: Request, _: ApiKey) -> BatchAccepted:
    limit = request.app.state.settings.max_batch
    if len(body.events) > limit:
        rejected_requests().labels("batch_too_large").inc()
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"batch of {len(body.events)} events exceeds the limit of {limit}")
    events, rejected = [], []
    for index, raw in enumerate(body.events):
        try:
            events.append(_batch_item(raw))
        except ValueError as exc:
            rejected.append(Rejected(index=index, error=str(exc)))
    if rejected:
        rejected_requests().labels("invalid_event").inc(len(rejected))
    if events:
        await _publish(request, topics.WATCH_EVENTS, events)
    return BatchAccepted(topic=topics.WATCH_EVENTS.name, accepted=len(events), rejected=rejected)


@router.post("/stylizations", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted, tags=["stylization"],
             summary="Stylize, colour-grade or enhance a whole video; poll GET /v1/stylizations/{id}")
async def request_stylization(body: StylizeIn, request: Request, _: ApiKey) -> Accepted:
    if body.uri is not None:
        await _check_source(request, body.uri)
    event = make_event(StylizeRequested, **body.model_dump())
    return await _accept(request, topics.STYLIZE_REQUESTS, event, event.request_id)


@router.post("/generations", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted, tags=["generation"],
             summary="Generate covers, frames or a short clip of a topic; poll GET /v1/generations/{id}")
async def request_generation(body: GenerateIn, request: Request, _: ApiKey) -> Accepted:
    event = make_event(GenerationRequested, **body.model_dump())
    try:
        check_budget(event, request.app.state.generation.max_pixels_per_request)
    except RequestError as exc:
        rejected_requests().labels("too_large").inc()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"generation refused: {exc.detail}") from exc
    return await _accept(request, topics.GENERATION_REQUESTS, event, event.request_id)
