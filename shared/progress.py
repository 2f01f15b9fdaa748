"""Progress bars for long work, on stderr so that stdout stays clean for results (JSON, JSONL)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from rich.console import Console
from rich.progress import track

T = TypeVar("T")
_console = Console(stderr=True)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    return track(items, description=description, total=total, console=_console, transient=False)
