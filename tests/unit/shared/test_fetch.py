"""Fetching against a real HTTP server on loopback (allow-listed for the test)."""

import http.server
import threading

import pytest

from shared.fetch import FetchError, fetched
from shared.settings import FetchSettings

BODY = b"\x00\x00\x00\x18ftypmp42" + b"x" * 5000


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        routes = {
            "/clip.mp4": (200, {}, BODY),
            "/big.mp4": (200, {}, b"y" * 200_000),
            "/to-clip": (302, {"Location": "/clip.mp4"}, b""),
            "/to-private": (302, {"Location": "http://10.1.2.3/secret.mp4"}, b""),
            "/missing.mp4": (404, {}, b"nope"),
        }
        code, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def settings(tmp_path):
    return FetchSettings(media_root=tmp_path, allowed_url_hosts=["127.0.0.1"], max_bytes=100_000, timeout_s=5)


async def test_local_file_under_the_media_root(settings, tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    async with fetched("a.mp4", settings) as path:
        assert path == tmp_path / "a.mp4"


async def test_download_and_cleanup(server, settings):
    async with fetched(f"{server}/clip.mp4", settings) as path:
        assert path.read_bytes() == BODY
    assert not path.exists()


async def test_redirect_followed_when_safe(server, settings):
    async with fetched(f"{server}/to-clip", settings) as path:
        assert path.read_bytes() == BODY


@pytest.mark.parametrize("url,reason,match", [
    ("/to-private", "unsafe_source", "redirect refused"),
    ("/big.mp4", "file_too_large", "100000"),
    ("/missing.mp4", "http_error", "404"),
])
async def test_refusals(server, settings, url, reason, match):
    with pytest.raises(FetchError) as err:
        async with fetched(server + url, settings):
            pass
    assert err.value.reason == reason and match in err.value.detail


@pytest.mark.parametrize("source", ["../../etc/passwd", "http://127.0.0.1:1/x.mp4", "http://169.254.169.254/x"])
async def test_unsafe_sources_without_allow_list(tmp_path, source):
    with pytest.raises(FetchError) as err:
        async with fetched(source, FetchSettings(media_root=tmp_path)):
            pass
    assert err.value.reason == "unsafe_source"
