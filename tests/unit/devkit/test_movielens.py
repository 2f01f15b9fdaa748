"""MovieLens 100K conversion from RecBole's atomic files into the replay's CSVs."""

import csv

import pytest

from devkit.movielens import convert


def _atomic(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                       "196\t242\t3\t881250949\n186\t302\t1\t891717742\n22\t377\t5\t878887116\n")
    (raw / "ml-100k.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                      "242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery\n"
                                      "377\tHeavyweights\t1994\t\n")
    return raw


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_implicit_log_has_every_rating_and_no_weight_column(tmp_path):
    inter, items = convert(_atomic(tmp_path), tmp_path / "out")
    rows = _rows(inter)
    assert [(r["user_id"], r["item_id"], r["timestamp"]) for r in rows] == [
        ("196", "242", "881250949"), ("186", "302", "891717742"), ("22", "377", "878887116")]
    assert "weight" not in rows[0]
    movies = {r["item_id"]: r for r in _rows(items)}
    assert movies["302"]["tags"] == "Crime|Film-Noir|Mystery" and movies["302"]["topic"] == "Crime"
    assert movies["377"]["tags"] == "" and movies["377"]["topic"] == ""


def test_rating_weights_make_low_ratings_negative(tmp_path):
    inter, _ = convert(_atomic(tmp_path), tmp_path / "out", weights="rating")
    assert [float(r["weight"]) for r in _rows(inter)] == [0.0, -2.0, 2.0]


def test_unknown_weighting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="implicit"):
        convert(_atomic(tmp_path), tmp_path / "out", weights="stars")
