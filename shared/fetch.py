"""Getting the bytes an upload points at: a file under the media root, or an http(s) URL that
passes the SSRF guard (checked again on every redirect), within size and time limits."""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from shared.safety import UnsafeSource, check_source, check_url
from shared.settings import FetchSettings

MAX_REDIRECTS = 3


class FetchError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@asynccontextmanager
async def fetched(source: str, settings: FetchSettings):
    """Yield a local path for ``source``; a downloaded file is removed afterwards."""
    try:
        checked = check_source(source, settings.media_root, settings.allowed_url_hosts)
    except UnsafeSource as exc:
        raise FetchError("unsafe_source", str(exc)) from exc
    if checked.kind == "file":
        yield Path(checked.location)
        return
    with tempfile.TemporaryDirectory(prefix="clipstream-fetch-") as tmp:
        yield await download(checked.location, Path(tmp) / "video", settings)


async def download(url: str, dest: Path, settings: FetchSettings) -> Path:
    timeout = httpx.Timeout(settings.timeout_s)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with client.stream("GET", url) as resp:
                    if resp.is_redirect:
                        url = str(resp.url.join(resp.headers.get("location", "")))
                        try:
                            check_url(url, settings.allowed_url_hosts)
                        except UnsafeSource as exc:
                            raise FetchError("unsafe_source", f"redirect refused: {exc}") from exc
                        continue
                    if resp.status_code != 200:
                        raise FetchError("http_error", f"GET {url} answered {resp.status_code}")
                    declared = int(resp.headers.get("content-length") or 0)
                    if declared > settings.max_bytes:
                        raise FetchError("file_too_large", f"{declared} bytes > limit {settings.max_bytes}")
                    size = 0
                    with open(dest, "wb") as out:
                        async for chunk in resp.aiter_bytes(1 << 16):
                            size += len(chunk)
                            if size > settings.max_bytes:
                                raise FetchError("file_too_large", f"more than {settings.max_bytes} bytes")
                            out.write(chunk)
                    return dest
            except httpx.TimeoutException as exc:
                raise FetchError("timeout", f"GET {url} took longer than {settings.timeout_s}s") from exc
            except httpx.HTTPError as exc:
                raise FetchError("http_error", f"GET {url} failed: {exc}") from exc
    raise FetchError("http_error", f"more than {MAX_REDIRECTS} redirects")
