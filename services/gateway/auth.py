"""API keys from settings, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from services.gateway.limits import rejected_requests

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of the keys in CLIPSTREAM_GATEWAY_API_KEYS")


def key_matches(given: str, keys: list[str]) -> bool:
    given_b = given.encode()
    # compare against every key so the time taken does not tell which one nearly matched
    return bool(sum(hmac.compare_digest(given_b, key.encode()) for key in keys))


async def require_api_key(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> str:
    keys = [k.get_secret_value() for k in request.app.state.settings.api_keys]
    if not key:
        rejected_requests().labels("missing_api_key").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    if not key_matches(key, keys):
        rejected_requests().labels("wrong_api_key").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    return key


ApiKey = Annotated[str, Depends(require_api_key)]
