"""ClipStream's replay on real interaction logs, each against every baseline in the same run.

    python -m benchmarks.replay_logs --logs DIR [--only yoochoose,diginetica,amazon_grocery,movielens100k]
    python -m benchmarks.replay_logs --tuning [--logs DIR] [--only synthetic,movielens,yoochoose]
    python -m benchmarks.replay_logs --references --logs DIR

The logs are not in this repository. ``--logs DIR`` names a folder holding them in the replay's CSV
format (``clipstream eval replay`` reads the same files): ``yoochoose-clicks-even.csv`` (YOOCHOOSE
clicks), ``diginetica-sample.csv`` (Diginetica views), ``amazon-grocery.csv`` with
``amazon-grocery-items.csv`` (Amazon Grocery purchases and their categories). MovieLens 100K is made
with ``clipstream interactions --source movielens-100k`` into ``var/datasets/ml-100k`` when missing.
Each log's result goes to ``benchmarks/results/replay_<name>.json``, with the command that reproduces
it through the CLI; the README's table of these logs is checked against those files.

``--tuning`` runs the settings' sensitivity instead, on the logs the settings may be tuned on (the
synthetic log, MovieLens 100K's first 10,000 events and the first 3 days of YOOCHOOSE), one setting
changed at a time: ``benchmarks/results/replay_sensitivity.json``. ``--references`` sets the baselines as
the reference figures beside the shared logs describe them and compares (``replay_references.json``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import write_result
from evaluation.baselines import (
    BASELINES,
    DecayedPopularityBaseline,
    ItemKNNBaseline,
    PopularityBaseline,
    SequentialRulesBaseline,
)
from evaluation.replay import (
    BaselineSystem,
    ClipStreamSystem,
    evaluate,
    item_vectors,
    read_interactions,
    read_items,
    replay,
    shared_tiebreak,
)
from shared.settings import RecommenderSettings

MOVIELENS = Path("var/datasets/ml-100k")
SYNTHETIC = Path("var/datasets/synthetic")


@dataclass(frozen=True)
class Log:
    name: str
    file: str
    items: str | None
    what: str


LOGS = (
    Log("yoochoose", "yoochoose-clicks-even.csv", None, "YOOCHOOSE clicks (sessions with an even id, 1 week)"),
    Log("diginetica", "diginetica-sample.csv", None, "Diginetica item views (SR-GNN's sample)"),
    Log("amazon_grocery", "amazon-grocery.csv", "amazon-grocery-items.csv",
        "Amazon Grocery purchases, items with their category"),
    Log("movielens100k", "interactions.csv", "items.csv", "MovieLens 100K ratings as implicit feedback"),
)


def ensure_generated(folder: Path, source: str) -> Path:
    if not (folder / "interactions.csv").exists():
        cmd = [sys.executable, "-m", "cli.main", "interactions", "--out", str(folder)]
        subprocess.run(cmd + (["--source", source] if source != "synthetic" else []), check=True)
    return folder


def where(log: Log, logs: Path | None) -> tuple[Path, Path | None]:
    folder = ensure_generated(MOVIELENS, "movielens-100k") if log.name == "movielens100k" else logs
    if folder is None:
        raise SystemExit(f"{log.name}: needs --logs DIR (the folder that holds {log.file})")
    return folder / log.file, (folder / log.items if log.items else None)


def run_log(log: Log, logs: Path | None) -> dict:
    path, items = where(log, logs)
    interactions = read_interactions(path)
    meta = read_items(items) if items else {}
    t = time.perf_counter()
    result = replay(interactions, meta)
    def shown(file: Path) -> str:  # a shared log as DIR/<name> (the folder given with --logs), never its location
        return f"DIR/{file.name}" if logs is not None and file.parent == logs else str(file)

    command = f"clipstream eval replay --interactions {shown(path)}" + (f" --items {shown(items)}" if items else "")
    out = {"log": log.name, "what": log.what, "command": command, "seconds": round(time.perf_counter() - t), **result}
    write_result(f"replay_{log.name}", out)
    return out


# ---------------------------------------------------------------- sensitivity

VARIANTS: dict[str, dict] = {
    "defaults": {},
    "no online learning": {"learn_fraction": 0.0},
    "negatives from the whole catalogue, every positive": {"learn_candidate_share": 0.0},
    "session_knn prior 1 (not 2)": {"scorer_weights": {"session_knn": 1.0}},
    "trending prior 1 (not 0.3)": {"scorer_weights": {"trending": 1.0}},
    "hot prior 0.3 (not 0)": {"scorer_weights": {"hot": 0.3}},
    "hot half-life 30 days (as trending's: no short-term count)": {"hot_half_life_s": 30 * 86400.0},
    "learning rate 0.03 (not 0.1)": {"learn_rate": 0.03},
    "learning rate 0.3 (not 0.1)": {"learn_rate": 0.3},
    "learning share 0.1 (not 0.05)": {"learn_fraction": 0.1},
    "co-visit window 5 (not 10)": {"covisit_window": 5},
    "co-visit window 20 (not 10)": {"covisit_window": 20},
    "hot half-life 1 hour (not 1 day), hot prior 0.5": {"hot_half_life_s": 3600.0, "scorer_weights": {"hot": 0.5}},
}


def tuning_logs(logs: Path | None, only: list[str] | None) -> list[tuple[str, list, dict]]:
    """The logs settings may be tuned on (``only``: some of synthetic, movielens, yoochoose)."""
    out = []
    if not only or "synthetic" in only:
        syn = ensure_generated(SYNTHETIC, "synthetic")
        out.append(("synthetic", read_interactions(syn / "interactions.csv"), read_items(syn / "items.csv")))
    if not only or "movielens" in only:
        ml = ensure_generated(MOVIELENS, "movielens-100k")
        out.append(("movielens100k_first_10k", read_interactions(ml / "interactions.csv")[:10000],
                    read_items(ml / "items.csv")))
    if logs is not None and (not only or "yoochoose" in only):
        yoochoose = read_interactions(logs / "yoochoose-clicks-even.csv")
        out.append(("yoochoose_first_3_days", [e for e in yoochoose if e.ts < yoochoose[0].ts + 3 * 86400], {}))
    return out


def clipstream_ndcg(interactions: list, meta: dict, overrides: dict) -> float:
    tiebreak = shared_tiebreak(interactions, meta)
    with tempfile.TemporaryDirectory(prefix="clipstream-sensitivity-") as tmp:
        vectors = item_vectors(sorted(tiebreak), meta)
        content = all(i in meta for i in vectors)
        settings = RecommenderSettings(state_dir=Path(tmp) / "state", content_vectors=content, **overrides)
        ours = ClipStreamSystem(vectors, meta, Path(tmp), settings)
        result = evaluate(interactions, [ours], tiebreak, progress=False)
    return result["systems"]["clipstream"]["ndcg@10"]


def best_baseline(interactions: list, meta: dict) -> tuple[str, float]:
    tiebreak = shared_tiebreak(interactions, meta)
    systems = [BaselineSystem(cls()) for cls in BASELINES]
    result = evaluate(interactions, systems, tiebreak, progress=False, ours=systems[0].name)
    name, scores = max(result["systems"].items(), key=lambda kv: kv[1]["ndcg@10"])
    return name, scores["ndcg@10"]


def sensitivity(logs: Path | None, only: list[str] | None = None) -> dict:
    sets = tuning_logs(logs, only)
    rows = []
    for name, interactions, meta in sets:
        base, base_ndcg = best_baseline(interactions, meta)
        for variant, overrides in VARIANTS.items():
            ndcg = clipstream_ndcg(interactions, meta, overrides)
            rows.append({"log": name, "variant": variant, "overrides": overrides, "ndcg@10": ndcg,
                         "best_baseline": base, "baseline_ndcg@10": base_ndcg,
                         "ratio": round(ndcg / base_ndcg, 3) if base_ndcg else None})
            print(rows[-1], flush=True)
    out = {"rows": rows}
    write_result("replay_sensitivity" + ("_" + "_".join(only) if only else ""), out)
    return out


# ---------------------------------------------------------------- the data set's reference figures

REFERENCES = (  # yoochoose-clicks-even.csv, from the README beside the shared logs: (name, baseline, NDCG@10, Recall@20)
    ("popularity", PopularityBaseline, {}, 0.032, 0.109),
    ("popularity decayed, half-life 1 day", DecayedPopularityBaseline, {"half_life_s": 86400.0}, 0.038, 0.132),
    ("item-kNN co-visitation, last 50 positives", ItemKNNBaseline, {"history": 50, "decay": 1.0}, 0.236, 0.439),
    ("item-kNN, the k-th most recent positive weighted 0.7^k", ItemKNNBaseline, {"history": 50, "decay": 0.7},
     0.248, 0.449),
    ("sequential rules", SequentialRulesBaseline, {}, 0.247, 0.432),
)


def references(logs: Path | None) -> dict:
    """The baselines, set as the reference figures describe them, on ``yoochoose-clicks-even.csv``."""
    if logs is None:
        raise SystemExit("--references needs --logs DIR (the folder that holds yoochoose-clicks-even.csv)")
    interactions = read_interactions(logs / "yoochoose-clicks-even.csv")
    systems = []
    for label, cls, kwargs, *_ in REFERENCES:
        model = cls(**kwargs)
        model.name = label
        systems.append(BaselineSystem(model))
    result = evaluate(interactions, systems, shared_tiebreak(interactions, {}), progress=True, ours=systems[0].name)
    rows = [{"system": label, "settings": kwargs, "ndcg@10": result["systems"][label]["ndcg@10"],
             "recall@20": result["systems"][label]["recall@20"], "reference_ndcg@10": ref_ndcg,
             "reference_recall@20": ref_recall,
             "within_0.005": abs(result["systems"][label]["ndcg@10"] - ref_ndcg) <= 0.005}
            for label, _, kwargs, ref_ndcg, ref_recall in REFERENCES]
    for row in rows:
        print(row, flush=True)
    out = {"log": "yoochoose-clicks-even.csv", "rows": rows}
    write_result("replay_references", out)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logs", type=Path, help="the folder that holds the shared real logs")
    p.add_argument("--only", help="comma-separated log names (with --tuning: synthetic, movielens, yoochoose)")
    p.add_argument("--tuning", action="store_true", help="the settings' sensitivity on the tuning logs")
    p.add_argument("--references", action="store_true", help="the baselines against the data set's reference figures")
    args = p.parse_args(argv)
    if args.tuning:
        return sensitivity(args.logs, args.only.split(",") if args.only else None)
    if args.references:
        return references(args.logs)
    chosen = [log for log in LOGS if not args.only or log.name in args.only.split(",")]
    results = {}
    for log in chosen:
        r = run_log(log, args.logs)
        results[log.name] = r
        print(f"{log.name}: {r['ratio']}", flush=True)
    return results


if __name__ == "__main__":
    main()
