"""Which recommender replica a per-user read goes to: the one that serves the user's partition.

:func:`route_feed` asks the partition's owner (from the memberships table, ``owners.py``). A replica that
does not serve the partition (or has not finished restoring it) answers HTTP 421 with
``{"detail": ..., "partition": p}``; that, a partition without an owner (a rebalance), a refused
connection or a timeout is retried every ``STEP_S``..``MAX_STEP_S``, re-reading the table each time, until
``wait_s`` has passed: then nobody answered (the route says 503 with ``Retry-After``). An attempt starts
only before that deadline, so a request takes at most ``wait_s`` plus one upstream timeout.

While no replica has ever claimed a partition (one recommender of an older build), the request goes to
``fallback_url`` as before, and only a 421 from it is retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from shared.metrics import counter
from shared.ownership import Owners

SERVICE = "gateway"
MISDIRECTED = 421
STEP_S = 0.05
MAX_STEP_S = 0.1
OUTCOMES = ("owner", "rerouted", "no_owner", "fallback")

feed_routes = counter(SERVICE, "feed_routes",
                      "Feed requests by how they were routed: owner (the partition's owner answered at the first try), "
                      "rerouted (answered after a 421, a refused connection or a partition without an owner), "
                      "no_owner (503: no replica answered for the partition within owner_wait_s), fallback (no "
                      "replica has claimed any partition: sent to recommender_url).", ("outcome",))
for _outcome in OUTCOMES:
    feed_routes.labels(_outcome)  # every series at 0 from the start


@dataclass(frozen=True)
class Routed:
    """How a feed request went: ``response`` is what a replica answered, or None when none did (``error`` says
    why, without addresses: it goes to the client); ``url``: the replica asked last."""

    outcome: str
    response: httpx.Response | None = None
    error: str = ""
    url: str | None = None


async def route_feed(client: httpx.AsyncClient, owners: Owners, partition: int, path: str, params: dict, *,
                     fallback_url: str, wait_s: float, timeout_s: float, clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                     step_s: float = STEP_S, max_step_s: float = MAX_STEP_S) -> Routed:
    """GET ``path`` (already quoted, starting with ``/``) with ``params`` from the replica that serves
    ``partition``, retrying as the module says; the outcome is one of ``OUTCOMES``."""
    deadline = clock() + wait_s
    attempt = 0
    why, asked = "no replica has claimed it", None
    while True:
        fallback = not owners.claims
        base = fallback_url if fallback else owners.owner(partition)
        if base is None:
            why = "no replica has claimed it"
        else:
            url, asked = base.rstrip("/") + path, base
            try:
                resp = await client.get(url, params=params, timeout=timeout_s)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                if fallback:  # one recommender, as before: its failure is the answer
                    return Routed("fallback", error=type(exc).__name__, url=base)
                why = f"its replica did not answer: {type(exc).__name__}"
            else:
                if resp.status_code != MISDIRECTED:
                    outcome = "fallback" if fallback else "rerouted" if attempt else "owner"
                    return Routed(outcome, resp, url=base)
                why = "the replica that claimed it does not serve it (HTTP 421)"
        left = deadline - clock()
        if left <= 0:
            return Routed("no_owner", error=why, url=asked)
        attempt += 1
        await sleep(min(step_s * attempt, max_step_s, left))
