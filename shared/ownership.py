"""Which recommender replica serves which partition of ``watch.events``, made known through Kafka.

A replica that is assigned a partition publishes a :class:`Claim` (partition, group generation, its HTTP
address) to the group's memberships topic; on revocation it publishes a release (the same generation, no
address). Readers (the gateway) keep, per partition, the claim of the highest generation; a release of the
current generation leaves the partition without an owner until the next generation's claim arrives. The
embedded broker (Tansu 0.6) answers describe-groups without members or assignments, so the topic, not the
group coordinator, is the source of truth; it works the same on Apache Kafka.

A user's partition is computed as the producers compute it: Kafka's default partitioner (murmur2 of the
key), from the client library.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from aiokafka.partitioner import DefaultPartitioner
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events import Identifier

_partitioner = DefaultPartitioner()


def base_url(url: str) -> str:
    """``url`` if it is an http(s) base URL with a host, and nothing else (no credentials, query or fragment);
    else ValueError saying which: where the gateway sends a replica's feed requests."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a replica's URL must be http:// or https:// with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("a replica's URL carries no credentials, query or fragment")
    return url


def partition_for(key: str, partitions: int) -> int:
    """The partition a record keyed ``key`` goes to, among ``partitions`` (the producers' partitioner)."""
    every = list(range(partitions))
    return _partitioner(key.encode(), every, every)


def members_topic(group: str) -> str:
    """The memberships topic of a recommender group (one partition: claims stay in order)."""
    return f"{group}.members"


def changelog_topic(group: str) -> str:
    """The state changelog of a recommender group (compacted; one partition per watch.events partition)."""
    return f"{group}.changelog"


class Claim(BaseModel):
    """A replica serves ``partition`` (``url`` set) or stopped serving it (``url`` None), as of ``generation``."""

    model_config = ConfigDict(extra="forbid")

    partition: int = Field(ge=0, lt=1 << 16)
    generation: int = Field(ge=-1)
    url: str | None = Field(None, max_length=512)
    replica: Identifier
    at: float = Field(default_factory=time.time)

    @field_validator("url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        """The gateway sends feed requests there: an http(s) base URL, nothing else (no credentials, query or
        fragment)."""
        return None if url is None else base_url(url)


class Owners:
    """The claim of the highest generation per partition (a release of that generation empties it)."""

    def __init__(self) -> None:
        self.claims: dict[int, Claim] = {}

    def update(self, claim: Claim) -> bool:
        """Take ``claim`` unless a newer generation is known for its partition; returns whether it was taken."""
        current = self.claims.get(claim.partition)
        if current is not None and claim.generation < current.generation:
            return False
        if current is not None and claim.url is not None and current.url is None \
                and claim.generation == current.generation and claim.replica == current.replica:
            return False  # a claim read after its own release (same replica, same generation): still released
        self.claims[claim.partition] = claim
        return True

    def owner(self, partition: int) -> str | None:
        claim = self.claims.get(partition)
        return None if claim is None else claim.url

    def without_owner(self, partitions: int) -> list[int]:
        """Partitions among ``range(partitions)`` that nobody serves now (none at all while nothing was claimed)."""
        if not self.claims:
            return []
        return [p for p in range(partitions) if self.owner(p) is None]

    def urls(self) -> list[str]:
        return sorted({c.url for c in self.claims.values() if c.url is not None})
