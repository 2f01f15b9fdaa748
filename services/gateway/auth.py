"""API keys from settings, compared in constant time.

The keys are checked by :class:`services.gateway.limits.RequestGuard` before a body is read;
the dependency below documents the key in the OpenAPI document and checks it again.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of the keys in CLIPSTREAM_GATEWAY_API_KEYS")


def key_index(given: str | bytes, keys: list[str]) -> int | None:
    """Which of ``keys`` ``given`` is (the header's bytes or text), or None."""
    given_b = given if isinstance(given, bytes) else given.encode()
    found = None
    # compare against every key so the time taken does not tell which one nearly matched
    for index, key in enumerate(keys):
        if hmac.compare_digest(given_b, key.encode()):
            found = index
    return found


def key_matches(given: str, keys: list[str]) -> bool:
    return key_index(given, keys) is not None


async def require_api_key(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> str:
    keys = [k.get_secret_value() for k in request.app.state.settings.api_keys]
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    if not key_matches(key, keys):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    return key


ApiKey = Annotated[str, Depends(require_api_key)]
