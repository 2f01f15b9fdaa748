"""The generation pixel budget: checked by the gateway before it accepts a request, and by the service."""

from __future__ import annotations

from shared.events import GenerationRequested
from shared.jobs import RequestError


def requested_pixels(request: GenerationRequested) -> tuple[int, int]:
    """(images, pixels) a request asks for: count images, or duration x fps frames for a clip."""
    count = round(request.duration_s * request.fps) if request.kind == "clip" else request.count
    return count, count * request.size * request.size


def check_budget(request: GenerationRequested, max_pixels: int) -> None:
    """Raises RequestError("too_large") when the request asks for more than ``max_pixels`` output pixels."""
    count, pixels = requested_pixels(request)
    if pixels > max_pixels:
        raise RequestError("too_large", f"{count} images of {request.size}x{request.size} = {pixels} pixels "
                                        f"> limit {max_pixels}")
