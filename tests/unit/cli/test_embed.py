"""`clipstream embed` writes one JSON line per file, with the service's vectors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from services.encoder.engine import EncoderEngine
from shared.settings import Settings
from tests import media_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    return [media_files.good_clip(folder, 0, 2.0, seed=21), media_files.good_clip(folder, 3, 2.0, seed=21),
            media_files.text_file(folder)]


def test_embed_writes_a_line_per_file_with_the_service_vector(files, tmp_path):
    out = tmp_path / "vectors.jsonl"
    result = subprocess.run([sys.executable, "-m", "cli.main", "embed", *map(str, files), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, "one file is not a video: the command says so in its exit code"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    good, bad = lines[:2], lines[2]
    assert bad["error"] == "not_a_video"
    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    for line, path in zip(good, files):
        assert set(line) >= {"file", "vector", "keyframes", "duration_s", "model_version"}
        assert line["model_version"] == engine.version and line["duration_s"] == pytest.approx(2.0, abs=0.1)
        [(_, embedded)] = engine.embed_files([path], [""])
        np.testing.assert_allclose(line["vector"], embedded.vector, atol=1e-5)
