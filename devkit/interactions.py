"""Synthetic interaction logs: users with topic tastes that drift, sessions, skips and dislikes.

Written as the CSV files ``clipstream eval replay`` reads (``interactions.csv``:
user_id,item_id,timestamp,weight; ``items.csv``: item_id,title,tags,topic), and used by tests
and the demo. Deterministic for a seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devkit.corpus import ADJECTIVES, TOPICS, VOCAB


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    tags: tuple[str, ...]
    topic: str


def make_items(n: int, seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        nouns, tags = VOCAB[topic]
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)} #{i}".capitalize()
        chosen = tuple(sorted(set(rng.choice(tags, size=2, replace=False).tolist())))
        items.append(Item(f"item{i:05d}", title, chosen, topic))
    return items


def make_log(items: list[Item], users: int, events: int, seed: int = 0, start_ts: int = 1_764_000_000) -> list[tuple]:
    """(user_id, item_id, timestamp, weight) rows in time order.

    Each user has two favourite topics and drifts to a new one half way; a session sticks to one
    topic; within a topic some items are far more popular (Zipf); off-taste items are often
    skipped (weight -0.5) and sometimes disliked (-2); liked items get 1-3.
    """
    rng = np.random.default_rng(seed)
    by_topic = {t: [it.item_id for it in items if it.topic == t] for t in TOPICS}
    zipf = {t: (1.0 / np.arange(1, len(v) + 1) ** 1.1) for t, v in by_topic.items()}
    zipf = {t: w / w.sum() for t, w in zipf.items()}
    tastes = {u: list(rng.choice(len(TOPICS), size=2, replace=False)) for u in range(users)}
    drift_at = {u: int(rng.integers(events // 3, 2 * events // 3)) for u in range(users)}
    clock = {u: start_ts + int(rng.integers(0, 3600)) for u in range(users)}
    session_left = {u: 0 for u in range(users)}
    session_topic = {u: 0 for u in range(users)}
    rows = []
    for n in range(events):
        u = int(rng.integers(users))
        if n >= drift_at[u] and len(tastes[u]) == 2:
            tastes[u] = [tastes[u][0], int((tastes[u][1] + 1 + rng.integers(len(TOPICS) - 1)) % len(TOPICS))]
        if session_left[u] == 0:
            clock[u] += int(rng.integers(3 * 3600, 24 * 3600))
            session_left[u] = int(rng.integers(4, 15))
            session_topic[u] = int(rng.choice(tastes[u])) if rng.random() < 0.85 else int(rng.integers(len(TOPICS)))
        session_left[u] -= 1
        clock[u] += int(rng.integers(20, 120))
        topic = TOPICS[session_topic[u]] if rng.random() < 0.8 else TOPICS[int(rng.integers(len(TOPICS)))]
        item = by_topic[topic][int(rng.choice(len(by_topic[topic]), p=zipf[topic]))]
        liked = TOPICS.index(topic) in tastes[u]
        if liked:
            weight = float(rng.choice([1.0, 2.0, 3.0], p=[0.6, 0.3, 0.1]))
        else:
            weight = float(rng.choice([-0.5, -2.0, 1.0], p=[0.6, 0.15, 0.25]))
        rows.append((f"user{u:04d}", item, clock[u], weight))
    rows.sort(key=lambda r: r[2])
    return rows


def write_csv(folder: Path, items: list[Item], rows: list[tuple]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    inter, item_path = folder / "interactions.csv", folder / "items.csv"
    with open(inter, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp", "weight"])
        w.writerows(rows)
    with open(item_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "tags", "topic"])
        w.writerows([(it.item_id, it.title, "|".join(it.tags), it.topic) for it in items])
    return inter, item_path
