"""HTTP API of the recommender: feeds, similar videos, text search (the gateway forwards to it)."""


import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.recommender import metrics
from services.recommender.core.feed import Candidate
from services.recommender.core.stats import TrendCounts
from services.recommender.core.trends import MIN_EVENTS, MIN_Z, WINDOWS, rising
from services.recommender.insights import insights_part, upload_part
from shared.insights import InsightsPart, TrendItem, Trends, UploadPart


class FeedItem(BaseModel):
    video_id: str
    score: float
    reason: str
    source: str
    topic: str | None = None
    creator_id: str | None = None


class Feed(BaseModel):
    user_id: str
    cold_start: bool
    items: list[FeedItem]


class Misdirected(BaseModel):
    detail: str
    partition: int


class Similar(BaseModel):
    video_id: str
    score: float
    topic: str | None = None


class SearchHit(Similar):
    concepts: list[str] = []
    """What the video shows (ImageNet class names the encoder found), strongest first."""


def observe(stage: str, seconds: float, n_in: int, n_out: int) -> None:
    metrics.stage_seconds.labels(stage).observe(seconds)
    if n_in == 0:
        metrics.candidates.labels(stage).inc(n_out)
    elif n_out < n_in and stage not in ("scorer", "mmr"):
        metrics.filtered.labels(stage).inc(n_in - n_out)


def create_router(max_k: int) -> APIRouter:
    api = APIRouter(prefix="/v1")
    K = Annotated[int, Query(ge=1, le=max_k, description=f"how many items, 1..{max_k}")]

    def engine(request: Request):
        return request.app.state.recommender

    def item(rec, c: Candidate) -> FeedItem:
        info = rec.catalogue.info.get(c.video_id)
        return FeedItem(video_id=c.video_id, score=round(c.score, 5), reason=c.reason, source=c.source,
                        topic=info.topic if info else None, creator_id=info.creator_id if info else None)

    @api.get("/feed/{user_id}", response_model=Feed, tags=["feed"],
             responses={421: {"model": Misdirected, "description": "The user's partition is not served here (another "
                                                                     "replica owns it, or it is being restored)"}})
    async def feed(user_id: str, request: Request, k: K = 20) -> Feed | JSONResponse:
        serving, partition = request.app.state.partitions.serves(user_id)
        if not serving:  # never a cold-start feed for a user whose state is elsewhere
            metrics.not_owner.inc()
            return JSONResponse(Misdirected(detail=f"partition {partition} of {user_id!r} is not served by this replica",
                                            partition=partition).model_dump(), status_code=421)
        rec = engine(request)
        started = time.perf_counter()
        items = rec.feed(user_id, k, observe)
        metrics.feed_seconds.observe(time.perf_counter() - started)
        return Feed(user_id=user_id, cold_start=rec.user(user_id).is_cold, items=[item(rec, c) for c in items])

    @api.get("/videos/{video_id}/similar", response_model=list[Similar], tags=["feed"])
    async def similar(video_id: str, request: Request, k: K = 10) -> list[Similar]:
        rec = engine(request)
        hits = rec.similar(video_id, k)
        if hits is None:
            raise HTTPException(404, f"video {video_id!r} is not in the catalogue")
        return [Similar(video_id=v, score=round(s, 5), topic=getattr(rec.catalogue.info.get(v), "topic", None))
                for v, s in hits]

    @api.get("/search", response_model=list[SearchHit], tags=["feed"])
    async def search(request: Request, q: Annotated[str, Query(min_length=1, max_length=200)],
                     k: K = 10) -> list[SearchHit]:
        """Videos whose concepts, title and tags are nearest the query; none for a query of stop words only."""
        rec = engine(request)
        hits = []
        for v, s in rec.search(q, k):
            info = rec.catalogue.info.get(v)
            hits.append(SearchHit(video_id=v, score=round(s, 5), topic=info.topic if info else None,
                                  concepts=list(info.concepts) if info else []))
        return hits

    @api.get("/insights/{video_id}", response_model=InsightsPart, tags=["insights"],
             responses={404: {"description": "The video is not in the catalogue"}})
    async def insights(video_id: str, request: Request,
                       days: Annotated[float | None, Query(gt=0, le=365, description="activity window (default: "
                                                                                      "insights_window_days)")] = None
                       ) -> InsightsPart:
        """This replica's part of a video's creator insights: raw reach counts over the partitions it serves
        (the gateway sums the replicas and applies the privacy floor), tag and title suggestions."""
        rec = engine(request)
        started = time.perf_counter()
        part = insights_part(rec, video_id, sorted(request.app.state.partitions.serving), rec.clock(), days)
        metrics.insights_seconds.observe(time.perf_counter() - started)
        if part is None:
            raise HTTPException(404, f"video {video_id!r} is not in the catalogue")
        return part

    @api.get("/insights/uploads/{request_id}", response_model=UploadPart, tags=["insights"])
    async def upload_insights(request_id: str, request: Request,
                              days: Annotated[float | None, Query(gt=0, le=365)] = None) -> UploadPart:
        """This replica's part of an unpublished upload's insights, once the encoder's result has arrived here
        (``pending`` until then)."""
        rec = engine(request)
        done = request.app.state.uploads.get(request_id)
        if done is None:
            return UploadPart(request_id=request_id, status="pending")
        started = time.perf_counter()
        part = upload_part(rec, done, sorted(request.app.state.partitions.serving), rec.clock(), days)
        metrics.insights_seconds.observe(time.perf_counter() - started)
        if isinstance(part, str):
            return UploadPart(request_id=request_id, status="failed", creator_id=done.creator_id, error=part)
        return UploadPart(request_id=request_id, status="ok", creator_id=done.creator_id, part=part)

    @api.get("/trends", response_model=Trends, tags=["insights"])
    async def trends(request: Request, window: Annotated[Literal["1h", "24h"], Query()] = "1h",
                     k: K = 20) -> Trends:
        """Topics and concepts rising fastest in the watch stream, over every partition's counts."""
        rec = engine(request)
        width = WINDOWS[window]
        bucket = TrendCounts.BUCKET_S
        now = rec.clock()
        end = (now // bucket) * bucket
        found = rising(rec.trends.counts, now, width, bucket)[:k]
        return Trends(window=window, start=end - width, end=end,
                      rising=[TrendItem(kind=t.kind, name=t.name, views=t.now, before=t.before, z=t.z) for t in found],
                      rule=f"views in the window against the window before: a rise counts at a Poisson z >= {MIN_Z:g} "
                           f"and at least {MIN_EVENTS} views")

    return api
