"""Request bookkeeping for services that answer requests with completion events (generation, stylization).

The latest status of each request is kept in memory; finished ones are also written to
``<folder>/<request_id>.json``, which makes requests idempotent across restarts: a request
whose record says ``ok`` (and whose artefacts still exist) is answered again without work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

E = TypeVar("E", bound=BaseModel)


def public_path(path: str | None, root: Path) -> str | None:
    """A result's path as clients see it: relative to the service's output folder, never the server's
    absolute path (a path outside the folder is reduced to its file name)."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).name


class RequestError(ValueError):
    """A request that cannot be carried out as asked; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class JobBook(Generic[E]):
    def __init__(self, folder: Path, model: type[E]) -> None:
        self.folder = folder
        self.model = model
        self.latest: dict[str, E] = {}

    def path(self, request_id: str) -> Path:
        return self.folder / f"{request_id}.json"

    def get(self, request_id: str) -> E | None:
        if request_id in self.latest:
            return self.latest[request_id]
        path = self.path(request_id)
        return self.model.model_validate_json(path.read_text()) if path.exists() else None

    def note(self, request_id: str, event: E) -> None:
        self.latest[request_id] = event

    def save(self, request_id: str, event: E) -> None:
        """Write a finished request's record (``note`` keeps it in memory when it is announced)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(request_id).with_suffix(".json.part")
        tmp.write_text(event.model_dump_json())
        tmp.replace(self.path(request_id))
