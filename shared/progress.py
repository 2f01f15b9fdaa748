"""Progress bars for long work, on stderr so that stdout stays clean for results (JSON, JSONL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import Progress, TaskID, track

T = TypeVar("T")
_console = Console(stderr=True)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    return track(items, description=description, total=total, console=_console, transient=False)


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def update(self, advance: float) -> None:
        self._progress.update(self._task, advance=advance)


@contextmanager
def bar(description: str, total: float) -> Iterator[_Bar]:
    """A bar advanced by hand (for work that reports fractions, such as a video being processed)."""
    with Progress(*Progress.get_default_columns(), console=_console, transient=False) as p:
        yield _Bar(p, p.add_task(description, total=total))
