"""What the gateway checks before any route runs or any body is read, as plain ASGI middleware.

In order: the API key (401), the key's request rate (429, token bucket per key), the body size
(413). A wrong key with a malformed or huge body is therefore a 401, and a request over its rate
costs the gateway no parsing. ``/health``, ``/ready``, ``/metrics`` and the OpenAPI pages are open;
every ``/v1/`` path needs a key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from shared.metrics import counter
from shared.service import send_error
from services.gateway.auth import key_index

SERVICE = "gateway"
PROTECTED_PREFIX = "/v1/"


def rejected_requests():
    return counter(SERVICE, "rejected_requests", "HTTP requests refused before reaching a route, by reason.", ("reason",))


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), now

    def take(self, now: float) -> float:
        """0 when a token was taken; otherwise the seconds until one is there."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimit:
    """One token bucket per configured API key (so the number of buckets is bounded by the keys)."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[int, TokenBucket] = {}

    def wait(self, key: int) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)


class RequestGuard:
    """API key, then rate, then body size: each checked before the app (or anything) reads the body."""

    def __init__(self, app: Any, keys: Sequence[str], max_bytes: int, rate_per_s: float, burst: int) -> None:
        self.app = app
        self.keys = list(keys)
        self.max_bytes = max_bytes
        self.rate = RateLimit(rate_per_s, burst)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        if scope.get("path", "").startswith(PROTECTED_PREFIX):
            given = headers.get(b"x-api-key", b"")
            if not given:
                rejected_requests().labels("missing_api_key").inc()
                return await send_error(send, 401, "missing API key: send it in the X-API-Key header",
                                        [("WWW-Authenticate", "ApiKey")])
            index = key_index(given, self.keys)
            if index is None:
                rejected_requests().labels("wrong_api_key").inc()
                return await send_error(send, 401, "invalid API key", [("WWW-Authenticate", "ApiKey")])
            wait_s = self.rate.wait(index)
            if wait_s > 0:
                rejected_requests().labels("rate_limited").inc()
                return await send_error(send, 429, f"rate limit of {self.rate.rate:g} requests/s for this API key "
                                                   f"(burst {self.rate.burst}) exceeded",
                                        [("Retry-After", str(max(1, math.ceil(wait_s))))])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        # Read the body up to the limit before the app sees it (bodies here are small JSON).
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        rejected_requests().labels("body_too_large").inc()
        await send_error(send, 413, f"request body larger than {self.max_bytes} bytes")
