"""API keys from settings, compared in constant time.

The keys are checked by :class:`services.gateway.limits.RequestGuard` before a body is read;
the dependency below documents the key in the OpenAPI document and checks it again. Before the
gateway starts, :func:`refuse_exposed_default_key` makes sure it does not face other hosts with the
built-in demo key.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from shared.settings import GatewaySettings

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


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def refuse_exposed_default_key(settings: GatewaySettings) -> None:
    """Exit (non-zero, with the reason) when a gateway reachable from other hosts has no keys of its own.

    Without ``CLIPSTREAM_GATEWAY_API_KEYS`` the gateway would accept the built-in demo key, which is
    fine on loopback (the demo, tests) and nowhere else. ``clipstream run gateway`` calls it before
    anything starts (``services/registry.py``).
    """
    keys = [k.get_secret_value() for k in settings.api_keys]
    if "api_keys" in settings.model_fields_set and keys:
        return
    if is_loopback(settings.host):
        return
    reason = "is empty" if "api_keys" in settings.model_fields_set else "is not set"
    raise SystemExit(f"refusing to start: CLIPSTREAM_GATEWAY_API_KEYS {reason}, and the gateway would listen on "
                     f"{settings.host!r}, which other hosts can reach, with the built-in demo key. Set "
                     "CLIPSTREAM_GATEWAY_API_KEYS to a comma-separated list of keys, or listen on 127.0.0.1.")
