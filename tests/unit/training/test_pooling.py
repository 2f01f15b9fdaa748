"""The self-attention pooling head: unit outputs, mean pooling when untrained, order and padding
invariance, a training step that lowers the contrastive loss, an ONNX export that computes the same."""

import numpy as np
import pytest
import torch

from training.train_pooling import PoolingHead, info_nce, mean_pool, sample_views, train

F_DIM = 32


@pytest.fixture(autouse=True)
def one_thread():
    """A tiny model: one thread is fastest, and a busy machine is not oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_head(seed: int = 0) -> PoolingHead:
    torch.manual_seed(seed)
    return PoolingHead(F_DIM, dim=16, layers=1, heads=2, dropout=0.0)


def perturbed(head: PoolingHead) -> PoolingHead:
    """Non-zero scores and correction (a fresh head is exactly mean pooling)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in (*head.score.parameters(), *head.correction.parameters()):
            p.normal_(0, 0.5)
    return head.eval()


def batch(b: int = 3, k: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, k, F_DIM, generator=g) * 3  # non-negative, like the backbone's features
    mask = torch.ones(b, k, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    return x, mask


def test_output_is_a_unit_vector_per_clip_in_the_feature_space():
    x, mask = batch()
    with torch.no_grad():
        out = perturbed(small_head())(x, mask)
    assert out.shape == (3, F_DIM)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_untrained_head_is_masked_mean_pooling():
    x, mask = batch()
    with torch.no_grad():
        out = small_head().eval()(x, mask).numpy()
    assert np.allclose(out, mean_pool(x.numpy(), mask.numpy()), atol=1e-5)


def test_keyframe_order_and_padding_do_not_change_the_output():
    head = perturbed(small_head())
    x, mask = batch()
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(3))
    garbage = x.clone()
    garbage[~mask] = 100.0  # what sits in the padded rows must not matter
    with torch.no_grad():
        out = head(x, mask)
        assert torch.allclose(out, head(x[:, perm], mask[:, perm]), atol=1e-5)
        assert torch.allclose(out, head(garbage, mask), atol=1e-5)
        # a clip alone, unpadded, gives what it gives padded in a batch
        assert torch.allclose(out[2], head(x[2:3, :2], mask[2:3, :2])[0], atol=1e-5)


def clustered_cache(n: int = 24, versions: int = 3, t: int = 8, seed: int = 0):
    """n clips, each a base vector plus per-frame and per-version noise."""
    rng = np.random.default_rng(seed)
    base = rng.random((n, 1, 1, F_DIM)) * 2
    feats = (base + rng.normal(0, 0.6, (n, versions, t, F_DIM))).clip(0).astype(np.float32)
    return feats, np.full(n, t), np.array([f"s{i}" for i in range(n)])


def test_views_are_subsets_of_two_versions_with_a_mask():
    feats, counts, _ = clustered_cache()
    counts[0] = 3
    x1, m1, x2, m2 = sample_views(feats, counts, np.array([0, 1]), np.random.default_rng(0), k=6, min_frames=4)
    assert x1.shape == (2, 6, F_DIM) and m1.shape == (2, 6)
    assert m1[0].sum() == 3 and m2[0].sum() == 3  # never more than the clip has
    assert 4 <= m1[1].sum() <= 6
    assert (x1[~m1] == 0).all() and (x2[~m2] == 0).all()
    assert not torch.equal(x1[1], x2[1])  # two views differ


def test_training_lowers_the_contrastive_loss():
    feats, counts, sources = clustered_cache()
    rng = np.random.default_rng(5)
    views = [sample_views(feats, counts, np.arange(len(feats)), rng) for _ in range(4)]

    def loss(head):
        head.eval()
        with torch.no_grad():
            return np.mean([info_nce(head(a, ma), head(b, mb), sources, 0.1).item() for a, ma, b, mb in views])

    head = small_head()
    before = loss(head)
    head, history = train(feats, counts, sources, steps=30, batch=16, lr=3e-3, head=head, show=False, log_every=10)
    assert loss(head) < before - 0.05
    assert history[-1]["loss"] < history[0]["loss"]


def test_same_source_clips_are_not_negatives():
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    same = np.array(["x", "x", "y", "z"])
    # clip 1 identical to clip 0: a negative that would hurt, unless it shares clip 0's source
    a[1] = a[0]
    assert info_nce(a, a, same, 0.1) < info_nce(a, a, np.array(["x", "w", "y", "z"]), 0.1)


def test_onnx_export_computes_what_the_head_computes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from training.export import export_onnx

    head = perturbed(small_head())
    x, mask = batch()
    path = export_onnx(head, (x, mask), tmp_path / "pooling.onnx", ["features", "mask"], ["embedding"],
                       {"features": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"},
                        "embedding": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x2, mask2 = batch(b=5, k=4, seed=1)  # other batch and frame counts than the example
    mask2[1, 3:] = False
    got = session.run(None, {"features": x2.numpy(), "mask": mask2.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - head(x2, mask2).numpy()).max() < 1e-4
