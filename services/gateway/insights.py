"""``POST /v1/insights``: a creator's view of one of their videos before and after it is published (reach
forecast, cover candidates, tag and title suggestions, best time to publish).

Every recommender replica counts the users of the partitions it serves; the gateway asks each replica that
has claimed partitions (or ``recommender_url`` when none has), sums their parts once per partition and
applies the privacy floor (``shared/insights.py``). A creator's key may only ask about its creators' videos.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal, TypeVar

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ValidationError

from services.gateway.auth import CreatorScope
from services.gateway.limits import SERVICE
from services.gateway.proxy import K, RequestId, _detail, forward, quoted, unavailable
from services.gateway.schemas import InsightsIn, _error, read_responses
from services.gateway.strict import StrictJSONRoute
from shared import topics
from shared.insights import (
    Insights,
    InsightsPart,
    Trends,
    UploadInsights,
    UploadPart,
    combine,
)
from shared.metrics import counter, histogram

router = APIRouter(prefix="/v1", tags=["insights"], route_class=StrictJSONRoute)  # bodies as the writes read them
M = TypeVar("M", bound=BaseModel)
requests = counter(SERVICE, "insights_requests", "Creator insight requests by outcome: ok, not_found, forbidden, "
                                                 "unavailable, partial (some replica did not answer), pending and "
                                                 "upload_failed (polls of unpublished uploads), refused_window (a "
                                                 "creator's key asking for a window not offered).", ("outcome",))
latency = histogram(SERVICE, "insights_duration", "Time to answer one creator insight request (all replicas).")


async def ask(client: httpx.AsyncClient, url: str, segments: tuple[str, ...], params: dict, timeout_s: float,
              model: type[M]) -> M | int | str:
    """One replica's answer as ``model``; an int: a 404 (not known there); a str: why it did not answer."""
    try:
        resp = await client.get(url.rstrip("/") + quoted(segments), params=params, timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return f"{url}: {type(exc).__name__}"
    if resp.status_code != 200:
        return resp.status_code if resp.status_code == 404 else f"{url}: HTTP {resp.status_code}: {_detail(resp)}"
    try:
        return model.model_validate_json(resp.content)
    except ValidationError as exc:
        return f"{url}: an answer that is not a {model.__name__} ({exc.error_count()} errors)"


async def ask_replicas(request: Request, segments: tuple[str, ...], window_days: float | None,
                       model: type[M]) -> tuple[list[M], list[int | str]]:
    """Every replica that has claimed partitions (else ``recommender_url``) asked at once: (their answers, what
    the others said instead). None answering at all is a 503."""
    settings = request.app.state.settings
    urls = request.app.state.owners.urls() or [settings.recommender_url]
    params = {"days": window_days} if window_days else {}
    answers = await asyncio.gather(*(ask(request.app.state.upstream, u, segments, params, settings.upstream_timeout_s,
                                         model) for u in urls))
    got = [a for a in answers if isinstance(a, model)]
    others = [a for a in answers if not isinstance(a, model)]
    if not got and not any(a == 404 for a in others):
        requests.labels("unavailable").inc()
        raise unavailable("recommender unavailable: " + "; ".join(str(a) for a in others)[:300],
                          settings.upstream_timeout_s)
    return got, others


def refuse_unless(scope: frozenset[str] | None, creator: str | None, what: str) -> None:
    """403 when a creator's key asks about another creator's ``what``."""
    if scope is not None and creator is not None and creator not in scope:
        requests.labels("forbidden").inc()
        raise HTTPException(403, f"this key may not ask about {what}: it is not one of its creators'")


def refuse_window(request: Request, scope: frozenset[str] | None, window_days: float | None) -> None:
    """422 when a creator's key asks for an audience window the gateway does not offer creators: with any window,
    two close ones would differ by the few users active between them, a count under the privacy floor."""
    allowed = request.app.state.settings.insights_creator_windows_days
    if scope is None or window_days is None or window_days in allowed:
        return
    requests.labels("refused_window").inc()
    offered = ", ".join(f"{w:g}" for w in allowed)
    raise HTTPException(422, f"window_days {window_days:g}: a creator's key may ask for "
                             + (f"one of {offered} days, or none (the platform's window)" if allowed else
                                "the platform's window only: leave window_days out"))


def published(request: Request, parts: list[InsightsPart], started: float, scope: frozenset[str] | None) -> Insights:
    """The replicas' parts as one answer, the privacy floor applied (a creator's key reads rounded counts); counted
    and timed."""
    settings = request.app.state.settings
    out = combine(parts, settings.insights_min_users, topics.WATCH_EVENTS.partitions,
                  creator_round_to=settings.insights_creator_round_to if scope is not None else None)
    requests.labels("partial" if out.partitions_missing else "ok").inc()
    latency.observe(time.perf_counter() - started)
    return out


@router.post("/insights", response_model=Insights,
             summary="A video's reach forecast, cover candidates, tag and title suggestions and best time to publish",
             responses={**read_responses("recommender", "The video is not in the catalogue"),
                        403: _error("The key is a creator's, and the video is another creator's")})
async def insights(body: InsightsIn, request: Request, scope: CreatorScope) -> Insights:
    started = time.perf_counter()
    refuse_window(request, scope, body.window_days)
    parts, _ = await ask_replicas(request, ("insights", body.video_id), body.window_days, InsightsPart)
    if not parts:  # some replica said 404
        requests.labels("not_found").inc()
        raise HTTPException(404, f"video {body.video_id!r} is not in the catalogue (not uploaded, or not "
                                 "embedded yet)")
    refuse_unless(scope, parts[0].creator_id, f"video {body.video_id!r}")
    return published(request, parts, started, scope)


@router.get("/insights/uploads/{request_id}", response_model=UploadInsights,
            summary="The insights of an upload sent to POST /v1/insights/uploads: pending, ok or failed",
            responses={**read_responses("recommender", "No such route: an id cannot contain a slash"),
                       403: _error("The key is a creator's, and the upload is another creator's")})
async def upload_insights(request_id: RequestId, request: Request, scope: CreatorScope,
                          window_days: Annotated[float | None, Query(gt=0, le=365)] = None) -> UploadInsights:
    started = time.perf_counter()
    refuse_window(request, scope, window_days)
    got, others = await ask_replicas(request, ("insights", "uploads", request_id), window_days, UploadPart)
    if not got:  # the recommender's route never answers 404 for an upload: an error page of something else
        requests.labels("unavailable").inc()
        raise unavailable("recommender unavailable: " + "; ".join(str(a) for a in others)[:300],
                          request.app.state.settings.upstream_timeout_s)
    done = [a for a in got if a.status != "pending"]
    refuse_unless(scope, next((a.creator_id for a in done if a.creator_id), None), f"upload {request_id!r}")
    parts = [a.part for a in done if a.status == "ok" and a.part is not None]
    if not parts:
        failed = next((a for a in done if a.status == "failed"), None)
        requests.labels("upload_failed" if failed else "pending").inc()
        return UploadInsights(request_id=request_id, status="failed" if failed else "pending",
                              error=failed.error if failed else None)
    return UploadInsights(request_id=request_id, status="ok", insights=published(request, parts, started, scope))


@router.get("/trends", response_model=Trends, summary="Topics and concepts rising fastest in the watch stream",
            responses=read_responses("recommender"))
async def trends(request: Request, _: CreatorScope, window: Annotated[Literal["1h", "24h"], Query()] = "1h",
                 k: Annotated[int, K] = 20) -> Response:
    # every replica reads every partition's counts from the changelog: any one answers for all
    return await forward(request, ("trends",), {"window": window, "k": k})
