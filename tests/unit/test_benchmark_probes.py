"""The device-ready benchmarks: ONNX provider inputs from the manifests, the sequential probe's model; the ranker probe."""

import numpy as np
import onnxruntime as ort
import torch

from benchmarks.onnx_providers import cases, make_inputs, manifests
from benchmarks.ranker_probe import Ranker, fit, ndcg, scorer
from benchmarks.sequential_probe import SelfAttentiveRecommender, left_pad, train, training_windows


def test_every_committed_model_is_listed_and_gets_inputs_of_its_declared_shape():
    models = manifests()
    assert {"mosaic-fast", "mosaic-johnson", "style-vae", "topic-gan", "video-encoder"} <= set(models)
    assert all(path.is_file() for path in models.values())
    vae = ort.InferenceSession(str(models["style-vae"]), providers=["CPUExecutionProvider"])
    feeds = make_inputs(vae, 1, (360, 640), np.random.default_rng(0))
    assert feeds["image"].shape == (1, 3, 360, 640) and feeds["image"].dtype == np.float32
    assert feeds["style"].dtype == np.int64
    gan = ort.InferenceSession(str(models["topic-gan"]), providers=["CPUExecutionProvider"])
    label, batch, hw = cases("topic-gan")[0]
    out = gan.run(None, make_inputs(gan, batch, hw, np.random.default_rng(0)))[0]
    assert out.shape == (64, 3, 64, 64)
    assert [c[0] for c in cases("mosaic-fast")] == ["360p", "720p"]


def test_windows_are_left_padded_and_shifted_by_one():
    x, y = training_windows([[1, 2, 3, 4]], length=3)
    assert x.tolist() == [[1, 2, 3]] and y.tolist() == [[2, 3, 4]]
    assert left_pad([5], 3) == [0, 0, 5] and left_pad([1, 2, 3, 4], 3) == [2, 3, 4]


def test_the_sequential_model_learns_a_deterministic_order():
    torch.manual_seed(0)
    sequences = [[1, 2, 3, 4, 5, 6, 1, 2, 3] for _ in range(20)]  # item k is always followed by k % 6 + 1
    model = SelfAttentiveRecommender(items=6, length=8, dim=16, layers=1, dropout=0.0)
    losses = train(model, *training_windows(sequences, 8), epochs=150, device="cpu")
    assert losses[-1] < losses[0] / 2
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([left_pad([5, 6, 1, 2, 3, 4, 5, 6], 8)]))[0]
    # every position after the first (training always started at item 1) predicts the next item
    assert logits.argmax(-1).tolist()[1:] == [1, 2, 3, 4, 5, 6, 1]


def test_ranker_probe_ndcg_ranks_the_watched_candidate_among_its_list():
    x = np.array([[0.1], [0.9], [0.5]])
    lists = [(x, 1, np.zeros(3)), (x, 2, np.zeros(3)), (x, -1, np.zeros(3))]
    by_feature = ndcg(lists, lambda f, given: f[:, 0])
    assert by_feature == (1.0 + 1 / np.log2(3) + 0.0) / 3
    assert ndcg(lists, lambda f, given: given) == (1 / np.log2(4) + 1 / np.log2(4) + 0.0) / 3, "ties count against it"


def test_the_ranker_probe_learns_a_feature_the_prior_ignores():
    rng = np.random.default_rng(0)
    prior = np.array([1.0, 0.0])
    lists = []
    for _ in range(200):  # feature 0 is noise, feature 1 names the watched candidate
        x = rng.random((8, 2))
        lists.append((x, int(np.argmax(x[:, 1])), np.zeros(8)))
    model = Ranker(prior)
    before = ndcg(lists, scorer(model))
    losses = fit(model, lists, epochs=5, lr=0.05)
    assert losses[-1] < losses[0]
    assert ndcg(lists, scorer(model)) > before + 0.2


def test_the_sequential_feature_probe_trains_on_what_came_before_and_scores_a_list():
    from benchmarks.sequential_feature_probe import train as train_next, training_pairs, with_feature
    from evaluation.replay import Interaction

    log = [Interaction(f"u{u}", item, u * 10.0 + k, 1.0) for u in range(30) for k, item in enumerate("abc")]
    log.append(Interaction("u0", "a", 5.0, 1.0))  # a repeat: not a new pair
    log.sort(key=lambda ev: ev.ts)
    index = {"a": 1, "b": 2, "c": 3}
    xs, ys = training_pairs(log, until=100.0, index=index, window=2)  # users 0..9 only
    assert len(xs) == 20 and xs[:2] == [[0, 1], [1, 2]] and ys[:2] == [2, 3]
    model, pairs = train_next(log, 1e9, index, window=2, epochs=60)
    assert pairs == 60
    x, label, given = with_feature((np.zeros((2, 3)), 1, np.zeros(2)), (["c", "b"], ["a"], 0.0), model, index, 2)
    assert x.shape == (2, 4) and x[1, -1] == 1.0 and x[0, -1] < 0.5  # after a comes b, not c
