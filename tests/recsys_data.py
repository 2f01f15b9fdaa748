"""Synthetic videos (as videos.embedded events) and watch events for recommender tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from shared.events import VideoEmbedded, WatchEvent
from shared.settings import ModelSettings
from shared.vector_space import ModelSpace, model_space

T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)


def current_space() -> ModelSpace:
    """The sizes and version of the prepared models: what a recommender started now accepts."""
    return model_space(ModelSettings())


def videos(topics: int = 6, per_topic: int = 10, seed: int = 0, space: ModelSpace | None = None) -> list[VideoEmbedded]:
    """Videos clustered by topic: a topic direction plus a little noise, for the video vector and the
    search vector alike; sizes and model version of ``space`` (default: the prepared models')."""
    space = space or current_space()
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, space.video_dim))
    words = np.random.default_rng(seed + 1).normal(size=(topics, space.search_dim))
    out = []
    for t in range(topics):
        for j in range(per_topic):
            v = centres[t] + 0.35 * rng.normal(size=space.video_dim)
            v /= np.linalg.norm(v)
            s = words[t] + 0.35 * rng.normal(size=space.search_dim)
            s /= np.linalg.norm(s)
            out.append(VideoEmbedded(video_id=f"t{t}-v{j}", vector=v.round(5).tolist(), model_version=space.version,
                                     search_vector=s.round(5).tolist(), title=f"topic {t} video {j}", tags=[f"t{t}"],
                                     topic=f"topic{t}", creator_id=f"creator{t}-{j % 4}", duration_s=10.0,
                                     created_at=T0 - timedelta(days=3)))
    return out


def watch_log(n: int, users: int, video_ids: list[str], seed: int = 1) -> list[WatchEvent]:
    """Users with a favourite topic, some noise, skips and dislikes; deterministic event ids."""
    rng = np.random.default_rng(seed)
    by_topic: dict[str, list[str]] = {}
    for v in video_ids:
        by_topic.setdefault(v.split("-")[0], []).append(v)
    topic_names = sorted(by_topic)
    taste = {f"u{i}": topic_names[i % len(topic_names)] for i in range(users)}
    actions = ["impression", "play", "progress", "complete", "like", "share", "skip", "dislike"]
    out = []
    for i in range(n):
        user = f"u{int(rng.integers(users))}"
        topic = taste[user] if rng.random() < 0.8 else topic_names[int(rng.integers(len(topic_names)))]
        video = by_topic[topic][int(rng.integers(len(by_topic[topic])))]
        action = actions[int(rng.choice(8, p=[0.2, 0.15, 0.15, 0.2, 0.12, 0.03, 0.1, 0.05]))]
        out.append(WatchEvent(event_id=f"e{i:06d}", user_id=user, video_id=video, action=action,
                              watch_ms=int(rng.integers(0, 10000)), duration_ms=10000,
                              ts=T0 + timedelta(seconds=i)))
    return out
