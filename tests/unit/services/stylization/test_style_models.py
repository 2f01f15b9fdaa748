"""The committed style-transfer models: manifest, golden outputs, ONNX/torch parity, serving wrapper."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from services.stylization.core.style_models import StyleModel, UnknownStyle, load_styles
from shared.inference import ModelError, sha256_of
from shared.settings import ModelSettings
from tests.golden_styles import GOLDEN, golden_image, summarise

SETTINGS = ModelSettings(provider="cpu")
FOLDER = SETTINGS.dir / "styles"
MANIFEST = json.loads((FOLDER / "manifest.json").read_text())["models"]
GOLDEN_DATA = json.loads(GOLDEN.read_text())
EXPECTED = {"mosaic", "waves", "ink", "mosaic-johnson", "mosaic-vae", "waves-vae", "ink-vae"}


@pytest.fixture(scope="module")
def models() -> dict[str, StyleModel]:
    return load_styles(SETTINGS)


def test_load_styles_lists_the_expected_names(models):
    assert set(models) == EXPECTED
    assert {m.kind for m in models.values()} == {"fast", "johnson", "vae"}
    assert models["waves"].style == "waves" and models["ink-vae"].style_id == MANIFEST["style-vae"]["styles"].index("ink")


def test_vae_styles_share_one_session(models):
    assert models["mosaic-vae"].session is models["ink-vae"].session


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_manifest_sha256_matches_files(name):
    entry = MANIFEST[name]
    path = FOLDER / entry["file"]
    assert sha256_of(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
    assert (FOLDER / entry["checkpoint"]).exists()


def test_golden_covers_every_style_of_the_committed_files(models):
    assert set(GOLDEN_DATA) == set(models)
    for name, gold in GOLDEN_DATA.items():
        assert gold["sha256"] == models[name].card.sha256, "models changed: run python -m tests.golden_styles"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_on_the_golden_image_is_pinned(models, name):
    got, gold = summarise(models[name].stylize(golden_image())), GOLDEN_DATA[name]
    np.testing.assert_allclose(got["mean"], gold["mean"], atol=0.5)
    assert np.abs(np.array(got["pixels"], int) - np.array(gold["pixels"], int)).max() <= 3


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_onnx_matches_torch(name):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from training.style_nets import build

    entry = MANIFEST[name]
    state = torch.load(FOLDER / entry["checkpoint"], map_location="cpu", weights_only=False)
    assert state["kind"] == entry["kind"] and state["styles"] == entry["styles"]
    net = build(entry["kind"], len(entry["styles"]), entry.get("widths"), entry.get("skip", False),
                entry.get("kernel", 5))
    net.load_state_dict(state["state_dict"])
    net.eval()
    n = len(entry["styles"])
    x = torch.rand(n, 3, 68, 92, generator=torch.Generator().manual_seed(0))
    style = torch.arange(n)
    vae = entry["kind"] == "vae"
    with torch.no_grad():
        expected = (net(x, style) if vae else net(x)).numpy()
    session = ort.InferenceSession(str(FOLDER / entry["file"]), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy(), **({"style": style.numpy()} if vae else {})})[0]
    assert got.shape == expected.shape and got.min() >= 0 and got.max() <= 1
    assert np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize("name", ["mosaic", "waves-vae"])
@pytest.mark.parametrize("shape", [(2, 37, 51), (1, 5, 7), (1, 2, 3), (1, 64, 96)])
def test_stylize_keeps_shape_and_dtype(models, name, shape):
    frames = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = models[name].stylize(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8


def test_stylize_rejects_bad_shapes_and_passes_empty_batches(models):
    with pytest.raises(ValueError):
        models["mosaic"].stylize(np.zeros((8, 8, 3), np.uint8))
    assert models["mosaic"].stylize(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 8, 8, 3)


def test_styles_differ_and_change_the_image(models):
    img = golden_image()
    outs = {name: models[name].stylize(img).astype(np.float32) for name in ("mosaic", "mosaic-vae", "ink-vae")}
    for out in outs.values():
        assert np.abs(out - img).mean() > 10  # visibly stylised, not the identity
    assert np.abs(outs["mosaic-vae"] - outs["ink-vae"]).mean() > 10  # the style id matters


def test_warmup_runs(models):
    models["ink"].warmup()


def test_unknown_name_raises(models):
    with pytest.raises(ModelError, match="unknown style"):
        models["no-such-style"]
    with pytest.raises(KeyError):
        models["mosaic-johnson-vae"]
    with pytest.raises(UnknownStyle):
        models["mosaic"].with_style("waves")


def test_missing_manifest_raises(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_styles(SETTINGS, folder=tmp_path)


def test_unknown_kind_and_altered_file_raise(tmp_path):
    entry = dict(MANIFEST["mosaic-fast"])
    shutil.copy(FOLDER / entry["file"], tmp_path / entry["file"])
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"models": {"mosaic-fast": {**entry, "kind": "cubist"}}}))
    with pytest.raises(ModelError, match="unknown style-model kind"):
        load_styles(SETTINGS, folder=tmp_path)
    manifest.write_text(json.dumps({"models": {"mosaic-fast": {**entry, "sha256": "0" * 64}}}))
    with pytest.raises(ModelError, match="sha256"):
        load_styles(SETTINGS, folder=tmp_path)
