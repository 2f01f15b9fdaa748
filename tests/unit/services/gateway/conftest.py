import pytest


@pytest.fixture
def media(tmp_path):
    """A media root with one (fake) clip in it."""
    root = tmp_path / "media"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"\x00" * 16)
    return root
