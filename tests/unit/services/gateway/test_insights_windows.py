"""A creator's key may ask insights only for the audience windows the gateway offers creators (no replica needed:
the window is refused before any is asked)."""

import json

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from services.gateway.app import create_app
from shared.settings import FetchSettings, GatewaySettings, Settings

PLATFORM, CREATOR = "platform-key", "creator-key"


def gateway_app(media, windows: list[float]):
    settings = GatewaySettings.model_validate({
        "api_keys": [SecretStr(PLATFORM)], "creator_keys": {CREATOR: ["c1"]},
        "insights_creator_windows_days": windows, "recommender_url": "http://127.0.0.1:9",  # nothing listens
        "upstream_timeout_s": 1.0})
    return create_app(Settings(gateway=settings, fetch=FetchSettings(media_root=media)))


@pytest.fixture
async def ask(media):
    async def call(windows: list[float], key: str, window_days: float | None, poll: bool = False) -> httpx.Response:
        app = gateway_app(media, windows)
        async with TestKafkaBroker(app.state.broker), httpx.AsyncClient() as upstream:
            app.state.upstream = upstream  # what the app's lifespan (not run by this transport) would set
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers={"X-API-Key": key}) as c:
                if poll:
                    params = {"window_days": window_days} if window_days else {}
                    return await c.get("/v1/insights/uploads/r1", params=params)
                body = {"video_id": "v1", **({"window_days": window_days} if window_days else {})}
                return await c.post("/v1/insights", content=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
    return call


async def test_a_creator_asks_only_for_the_windows_offered(ask):
    refused = await ask([1, 7, 28], CREATOR, 7.5)
    assert refused.status_code == 422 and "one of 1, 7, 28 days" in refused.json()["detail"]
    polled = await ask([1, 7, 28], CREATOR, 3, poll=True)
    assert polled.status_code == 422 and "window_days 3" in polled.json()["detail"]
    offered = await ask([1, 7, 28], CREATOR, 7)
    assert offered.status_code == 503  # past the window check: no replica to answer
    assert (await ask([1, 7, 28], CREATOR, None)).status_code == 503  # the platform's window


async def test_without_windows_offered_a_creator_gets_the_platform_window_and_a_platform_key_any(ask):
    only = await ask([], CREATOR, 7)
    assert only.status_code == 422 and "leave window_days out" in only.json()["detail"]
    assert (await ask([], PLATFORM, 7.5)).status_code == 503
    assert (await ask([], CREATOR, None)).status_code == 503
