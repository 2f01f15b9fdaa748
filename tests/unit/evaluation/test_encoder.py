"""The encoder evaluation: its counting, label parsing and transforms on inputs whose answers are known,
and one small run on photo clips."""

import json

import numpy as np
import pytest

from evaluation.encoder import (
    TRANSFORMS,
    LabelError,
    colour_histogram,
    copy_recall,
    nearest_other,
    parse_labels,
    rank_of,
    read_labels,
    recall_at,
    repeating,
    run_eval,
    same_class_nn,
    transformed,
)


def test_rank_of_is_one_based_and_none_when_missing():
    assert rank_of(["a", "b", "c"], "a") == 1
    assert rank_of(["a", "b", "c"], "c") == 3
    assert rank_of(["a", "b"], "z") is None
    assert rank_of([], "a") is None


def test_recall_counts_ranks_within_k_and_misses():
    ranks = [1, 2, 5, 6, None]  # None: no vector for the query, or the clip not returned
    assert recall_at(ranks, 1) == {"count": 1, "of": 5, "share": 0.2}
    assert recall_at(ranks, 5) == {"count": 3, "of": 5, "share": 0.6}
    assert recall_at([], 5) == {"count": 0, "of": 0, "share": None}


def test_nearest_other_skips_the_clip_itself():
    v = np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)
    idx, score = nearest_other(v)
    assert idx.tolist() == [1, 0, 1]
    assert score[2] == pytest.approx(0.1)
    idx, score = nearest_other(v[:1])
    assert idx.tolist() == [-1] and np.isnan(score[0])


def test_same_class_nn_counts_only_clips_whose_class_repeats():
    classes = ["dog", "dog", "cat", "swan", "cat"]
    assert repeating(classes).tolist() == [True, True, True, False, True]
    nearest = np.array([1, 2, 4, 0, 0])  # dog->dog hit, dog->cat miss, cat->cat hit, swan ignored, cat->dog miss
    assert same_class_nn(nearest, classes) == {"count": 2, "of": 4, "share": 0.5}
    assert same_class_nn(np.array([1, 0]), ["a", "b"]) == {"count": 0, "of": 0, "share": None}


def test_copy_recall_overall_and_per_transform():
    gallery = np.eye(3, dtype=np.float32)
    copies = np.array([[0.9, 0.1, 0], [0, 0.2, 0.9], [0, 0, 1], [0, 1, 0]], np.float32)
    truth = np.array([0, 1, 2, 1])
    out = copy_recall(copies, gallery, truth, ["a", "a", "b", "b"])
    assert out["copy_recall@1"] == {"count": 3, "of": 4, "share": 0.75}
    assert out["copy_recall@1_by_transform"] == {"a": {"count": 1, "of": 2, "share": 0.5},
                                                 "b": {"count": 2, "of": 2, "share": 1.0}}


@pytest.fixture
def clip_dir(tmp_path):
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_parse_labels_reads_rows_and_ignores_extra_columns(clip_dir):
    text = 'file,class,description,source\na.mp4,dog,"a dog, jumping",x\nb.mp4, cat ,a cat,y\n'
    clips = parse_labels(text, clip_dir)
    assert [(c.file, c.cls, c.description) for c in clips] == [("a.mp4", "dog", "a dog, jumping"),
                                                                ("b.mp4", "cat", "a cat")]
    assert clips[0].path == clip_dir / "a.mp4"


@pytest.mark.parametrize(("text", "message"), [
    ("file,description\na.mp4,a dog\n", "missing column(s) class"),
    ("name,class\n", "missing column(s) file, description"),
    ("", "missing column(s) file, class, description"),
    ("file,class,description\n", "no clips listed"),
    ("file,class,description\nc.mp4,dog,a dog\n", "line 2: c.mp4 not found"),
    ("file,class,description\na.mp4,,a dog\n", "must not be empty"),
    ("file,class,description\na.mp4,dog,x\na.mp4,dog,y\n", "line 3: a.mp4 is listed twice"),
])
def test_parse_labels_errors_name_the_problem(clip_dir, text, message):
    with pytest.raises(LabelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_labels(text, clip_dir)


def test_read_labels_missing_file_or_folder(clip_dir):
    with pytest.raises(LabelError, match="not found"):
        read_labels(clip_dir, clip_dir / "labels.csv")
    (clip_dir / "labels.csv").write_text("file,class,description\na.mp4,dog,a dog\n")
    with pytest.raises(LabelError, match="not a folder"):
        read_labels(clip_dir / "nope", clip_dir / "labels.csv")
    assert len(read_labels(clip_dir, clip_dir / "labels.csv")) == 1


def test_run_eval_reports_label_errors_as_exit_code(clip_dir, tmp_path, capsys):
    (clip_dir / "labels.csv").write_text("file,class\na.mp4,dog\n")
    assert run_eval(str(clip_dir), str(clip_dir / "labels.csv"), str(tmp_path / "work"), True) == 2
    assert "missing column(s) description" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transforms_keep_a_video_shape(name):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (20, 90, 160, 3), dtype=np.uint8)
    out = TRANSFORMS[name](frames, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.ndim == 4 and out.shape[3] == 3
    assert out.shape[1] % 2 == 0 and out.shape[2] % 2 == 0  # H.264 wants even sizes
    if name == "trim20":
        assert len(out) == 16


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transformed_in_chunks_equals_the_whole_clip(name):
    frames = np.random.default_rng(0).integers(0, 255, (70, 36, 48, 3), dtype=np.uint8)
    whole = TRANSFORMS[name](frames, np.random.default_rng([0, 1, 2]))
    np.testing.assert_array_equal(np.stack(list(transformed(name, frames, [0, 1, 2]))), whole)


def test_colour_histogram_ignores_letterbox_bars():
    img = np.zeros((1, 40, 40, 3), np.uint8)
    img[:, 10:30] = (200, 30, 30)
    plain = np.broadcast_to(np.array((200, 30, 30), np.uint8), (1, 40, 40, 3)).copy()
    assert float(colour_histogram(img) @ colour_histogram(plain)) == pytest.approx(1.0, abs=1e-6)


def test_eval_encoder_runs_end_to_end_on_three_photo_clips(tmp_path, capsys):
    pytest.importorskip("skimage")
    from devkit.photo_clips import PHOTOS, make_photo_clips

    names = ["chelsea", "coffee", "rocket"]
    clips = tmp_path / "clips"
    make_photo_clips(clips, names, seconds=1.0, fps=8)
    rows = "".join(f"{n}.mp4,{n},{PHOTOS[n].query}\n" for n in names)
    (clips / "labels.csv").write_text("file,class,description\n" + rows)
    work = tmp_path / "work"
    assert run_eval(str(clips), str(clips / "labels.csv"), str(work), True) == 0
    result = json.loads(capsys.readouterr().out)
    assert json.loads((work / "encoder.json").read_text()) == result
    assert result["clips"] == 3 and result["repeating_classes_clips"] == 0 and result["copies"] == 18
    assert set(result["systems"]) == {"clipstream", "video-encoder-1", "colour-histogram"}
    for name, metrics in result["systems"].items():
        assert metrics["copy_recall@1"]["of"] == 18
        assert set(metrics["copy_recall@1_by_transform"]) == set(TRANSFORMS)
        assert metrics["same_class_nn"] == {"count": 0, "of": 0, "share": None}
        assert metrics["ms_per_keyframe"] > 0
        if name != "clipstream":
            assert metrics["text_recall@1"] is None and metrics["text_recall@5"] is None
    text = result["systems"]["clipstream"]["text_recall@5"]
    assert text["of"] == 3 and text["count"] >= 2
    assert result["systems"]["clipstream"]["text_recall@1"]["count"] >= 2  # with 3 clips, @5 alone proves little
    assert [d["file"] for d in result["details"]] == [f"{n}.mp4" for n in names]
    assert all({"query_rank", "nearest", "topic", "concepts"} <= set(d) for d in result["details"])
