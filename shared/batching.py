"""Micro-batching: concurrent callers submit one item each; one function call serves a batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Collects items for up to ``max_wait_s`` or ``max_batch`` items, then runs ``fn`` once in a
    worker thread (``fn`` maps a list of items to a list of results in the same order)."""

    def __init__(self, fn: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 16, max_wait_s: float = 0.01) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._pending: list[tuple[T, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.batches = 0

    async def submit(self, item: T) -> R:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch:
            await self._flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())
        return await future

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.max_wait_s)
        await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
        if not batch:
            return
        self.batches += 1
        try:
            results = await asyncio.to_thread(self.fn, [item for item, _ in batch])
        except Exception as exc:  # every caller of the failed batch sees the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        if self._pending:
            await self._flush()
