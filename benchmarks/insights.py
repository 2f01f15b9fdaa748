"""Creator insights at scale: one video's insights part (reach through the users' Qdrant collection, plus the
tag and title suggestions) against counting the same reach without the index, in the same run.

    python -m benchmarks.insights [--videos 100000] [--users 10000] [--queries 300]

The catalogue is the feed benchmark's (clustered 512-d vectors, embedded Qdrant with HNSW); each user has five
events. Baselines, over the same users and the same bars: a Python loop over the users (what the index
replaces) and one numpy product over a prebuilt matrix of every user's vector (a copy the service does not
keep). Also reported: how far the Qdrant count is from the exact count (HNSW is approximate), and how many
users' bars the refresh computes per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from benchmarks.common import percentile_ms, write_result
from benchmarks.recommender import DIM, NOW, clustered
from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.core.reach import kth_similarity
from services.recommender.engine import Recommender
from services.recommender.insights import insights_part
from services.recommender.reach_index import ReachIndex
from shared.events import WatchEvent
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore

PARTITIONS = 4


def build(tmp: Path, n_videos: int, n_users: int, console) -> tuple[Recommender, list[EdgeVectorStore], dict]:
    rng = np.random.default_rng(0)
    vecs = clustered(n_videos, rng)
    ids = [f"v{i}" for i in range(n_videos)]
    stores = [EdgeVectorStore(tmp / "videos", DIM), EdgeVectorStore(tmp / "users", DIM)]
    cat = Catalogue(stores[0])
    with console.status(f"{n_videos:,} videos into the catalogue, then its HNSW index"):
        for start in range(0, n_videos, 5000):
            cat.add_many([(VideoInfo(ids[i], f"topic{i % 20}", f"c{i % 3000}", NOW.timestamp() - 86400 * 5, None,
                                     f"clip {i} of topic {i % 20}", tags=(f"topic{i % 20}", f"tag{i % 97}")), vecs[i])
                          for i in range(start, min(n_videos, start + 5000))])
        stores[0].optimize()
    settings = RecommenderSettings(state_dir=tmp / "state")
    rec = Recommender(settings, cat, "bench", clock=lambda: NOW.timestamp() + 86400)
    rec.reach = ReachIndex(stores[1], settings.insights_top_k)
    with console.status(f"{n_users:,} users' events"):
        for u in range(n_users):
            for j in range(5):
                rec.apply(WatchEvent(user_id=f"u{u}", video_id=ids[int(rng.integers(n_videos))], action="like",
                                     ts=NOW + timedelta(seconds=u * 5 + j)), u % PARTITIONS)
    with console.status(f"refreshing {n_users:,} users' reach points (one catalogue search each)"):
        t = time.perf_counter()
        while rec.reach.pending:
            rec.reach.refresh(rec, 1000)
        refresh_s = time.perf_counter() - t
        stores[1].optimize()
    return rec, stores, {"refresh_users_per_s": round(n_users / refresh_s, 1)}


def bars_error(rec: Recommender, sample: int) -> float:
    """Mean of (stored bar - the exact k-th similarity over the whole catalogue) over a sample of users: the
    catalogue's HNSW search may miss a neighbour, which lowers a bar (and counts the user a little more often)."""
    ids = list(rec.catalogue.vectors)
    matrix = np.stack([rec.catalogue.vectors[i] for i in ids])
    users = [u for st in rec.partitions.values() for u in st.users.items()][:sample]
    k = rec.reach.top_k
    diffs = []
    for uid, user in users:
        scores = matrix @ (user.long / np.linalg.norm(user.long))
        diffs.append(rec.reach.bars[uid] - kth_similarity(np.partition(scores, -k)[-k:].tolist(), k))
    return float(np.mean(diffs)) if diffs else 0.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=300)
    args = p.parse_args(argv)
    from rich.console import Console

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        rec, stores, built = build(Path(tmp), args.videos, args.users, console)
        try:
            rng = np.random.default_rng(1)
            videos = [f"v{int(i)}" for i in rng.integers(args.videos, size=args.queries)]
            now = rec.clock()
            partitions = list(range(PARTITIONS))
            for v in videos[:10]:
                insights_part(rec, v, partitions, now)  # warm up
            ours, counts = [], []
            for v in videos:
                t = time.perf_counter()
                part = insights_part(rec, v, partitions, now)
                ours.append(time.perf_counter() - t)
                counts.append(part.reach.total)
            users = [(uid, st.users[uid]) for st in rec.partitions.values() for uid in st.users]
            bars = np.array([rec.reach.bars[uid] for uid, _ in users], np.float32)

            def loop(video: np.ndarray) -> int:  # without the index: every user, one by one
                n = 0
                for (uid, user), bar in zip(users, bars):
                    long = user.long
                    n += float(long @ video) / (float(np.linalg.norm(long)) + 1e-12) >= bar
                return n

            loop_s, exact = [], []
            for v in videos:
                t = time.perf_counter()
                exact.append(loop(rec.catalogue.vectors[v]))
                loop_s.append(time.perf_counter() - t)
            matrix = np.stack([u.long / np.linalg.norm(u.long) for _, u in users])
            numpy_s = []
            for v in videos:
                t = time.perf_counter()
                int(((matrix @ rec.catalogue.vectors[v]) >= bars).sum())
                numpy_s.append(time.perf_counter() - t)
            exact_a, counts_a = np.array(exact, float), np.array(counts, float)
            error = float(np.mean(np.abs(counts_a - exact_a) / np.maximum(exact_a, 1)))
            bar_error = bars_error(rec, 200)
        finally:
            for s in stores:
                s.close()
    out = {"videos": args.videos, "users": args.users, "queries": args.queries, "dim": DIM, **built,
           "insights_p50_ms": round(percentile_ms(ours, 50), 2), "insights_p99_ms": round(percentile_ms(ours, 99), 2),
           "python_loop_p99_ms": round(percentile_ms(loop_s, 99), 2),
           "numpy_matrix_p99_ms": round(percentile_ms(numpy_s, 99), 2),
           "ratio_to_python_loop_p99": round(percentile_ms(ours, 99) / percentile_ms(loop_s, 99), 3),
           "ratio_to_numpy_matrix_p99": round(percentile_ms(ours, 99) / percentile_ms(numpy_s, 99), 3),
           "mean_reach": round(float(np.mean(counts_a)), 1), "mean_relative_error_vs_exact": round(error, 4),
           "bar_mean_error": round(bar_error, 5), "goal_p99_ms": 200,
           "goal_met": percentile_ms(ours, 99) < 200}
    console.print(f"insights at {args.videos:,} videos / {args.users:,} users: p50 {out['insights_p50_ms']} ms, p99 "
                  f"{out['insights_p99_ms']} ms (goal < 200: {'met' if out['goal_met'] else 'NOT met'}); without the "
                  f"index: Python loop p99 {out['python_loop_p99_ms']} ms ({out['ratio_to_python_loop_p99']:.2f}x), "
                  f"numpy over a prebuilt matrix p99 {out['numpy_matrix_p99_ms']} ms "
                  f"({out['ratio_to_numpy_matrix_p99']:.2f}x); reach {out['mean_reach']} users on average, "
                  f"{out['mean_relative_error_vs_exact']:.1%} from the exact count; bars {out['bar_mean_error']:+.4f} "
                  f"from the exact k-th similarity on average; refresh {out['refresh_users_per_s']:,} users/s")
    path = write_result("insights", out)
    console.print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
