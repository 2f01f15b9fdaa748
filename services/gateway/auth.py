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


def creator_scopes(settings: GatewaySettings) -> tuple[list[str], list[frozenset[str]]]:
    """The creators' keys and, for each, the creator ids it may ask about."""
    pairs = [(k.get_secret_value(), frozenset(v)) for k, v in settings.creator_keys.items()]
    return [k for k, _ in pairs], [v for _, v in pairs]


def all_keys(settings: GatewaySettings) -> list[str]:
    """Every key the gateway accepts at its door: the platform's (any route) and the creators' (insights only)."""
    return [k.get_secret_value() for k in settings.api_keys] + creator_scopes(settings)[0]


def _key_scope(request: Request, key: str | None) -> frozenset[str] | None:
    """None: a platform key (any creator); a set: the creators a creator's key may ask about. Raises 401."""
    settings = request.app.state.settings
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    if key_matches(key, [k.get_secret_value() for k in settings.api_keys]):
        return None
    keys, scopes = creator_scopes(settings)
    index = key_index(key, keys)
    if index is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    return scopes[index]


async def require_api_key(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> str:
    """A platform key (CLIPSTREAM_GATEWAY_API_KEYS); a creator's key gets 403 here."""
    if _key_scope(request, key) is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key is a creator's: it may only ask for creator "
                                                       "insights (/v1/insights)")
    return key or ""


async def require_scope(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> frozenset[str] | None:
    """Any accepted key; returns the creators it may ask about (None: any)."""
    return _key_scope(request, key)


ApiKey = Annotated[str, Depends(require_api_key)]
CreatorScope = Annotated[frozenset[str] | None, Depends(require_scope)]


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
