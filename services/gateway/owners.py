"""The table of which recommender replica serves which ``watch.events`` partition, as the gateway keeps it.

The replicas publish :class:`shared.ownership.Claim` records to their group's memberships topic
(``<group>.members``); :func:`follow_owners` reads that topic from its beginning and follows it into an
:class:`shared.ownership.Owners` table for as long as the gateway runs. The topic is created by the
recommender: until it exists (or while the broker is away) the follower retries quietly every
``RETRY_S``, and meanwhile feed requests go to ``recommender_url`` (see ``routing.py``). A record that is
not a valid claim is skipped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from shared.metrics import counter, gauge
from shared.ownership import Claim, Owners
from shared.replay import Tail

SERVICE = "gateway"
RETRY_S = 1.0
log = logging.getLogger("clipstream.gateway.owners")

without_owner = gauge(SERVICE, "partitions_without_owner", "count",
                      "watch.events partitions no recommender replica serves now, by the memberships topic (a "
                      "rebalance, or a replica that stopped); 0 while no replica has claimed any (one recommender "
                      "at recommender_url).")
invalid_claims = counter(SERVICE, "invalid_claims", "Records of the recommender memberships topic that are not valid "
                                                    "claims (skipped).")
without_owner.set(0)


def apply_claims(owners: Owners, values: Iterable[bytes | None], partitions: int) -> int:
    """Take the claims among ``values`` (raw record values) into ``owners``; returns how many were invalid
    (skipped and counted). Sets the gauge of partitions among ``range(partitions)`` without an owner."""
    invalid = 0
    for value in values:
        try:
            if value is None:
                raise ValueError("a record without a value")
            claim = Claim.model_validate_json(value)
        except (ValidationError, ValueError):
            invalid += 1
            continue
        owners.update(claim)
    if invalid:
        invalid_claims.inc(invalid)
        log.warning("skipped %d records of the memberships topic that are not valid claims", invalid)
    without_owner.set(len(owners.without_owner(partitions)))
    return invalid


async def follow_owners(owners: Owners, bootstrap: str, topic: str, partitions: int, *, retry_s: float = RETRY_S,
                        **consumer_options: Any) -> None:
    """Read ``topic`` from its beginning into ``owners`` and follow it, until cancelled; never raises otherwise.

    A missing topic or an unreachable broker is retried every ``retry_s``, logged once until it changes."""
    announced = ""
    while True:
        tail: Tail | None = None
        try:
            tail = Tail(bootstrap, topic, **consumer_options)
            async with tail:
                if not tail.parts:
                    if announced != "missing":
                        log.info("memberships topic %s does not exist yet: feed requests go to recommender_url "
                                 "until a replica claims a partition", topic)
                        announced = "missing"
                else:
                    announced = "reading"
                    async for rows in tail.batches():
                        if rows:
                            apply_claims(owners, (r.value for r in rows), partitions)
                        else:
                            served = partitions - len(owners.without_owner(partitions)) if owners.claims else 0
                            log.info("partition owners read from %s: %d of %d partitions served by %d replicas",
                                     topic, served, partitions, len(owners.urls()))
        except Exception as exc:  # the broker away, a metadata error: retried below (cancellation is not caught)
            if announced != "failing":
                log.warning("cannot read the memberships topic %s (%s); retrying every %g s",
                            topic, type(exc).__name__, retry_s)
                announced = "failing"
        finally:
            if tail is not None:  # Tail stops its consumer on the way out, except when its start failed
                await tail.consumer.stop()
        await asyncio.sleep(retry_s)
