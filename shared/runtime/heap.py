"""Keep Python's cycle collector away from long-lived state.

A service that holds a large in-memory state (a catalogue of 100k videos, thousands of user
states) pays for it in every full collection: the collector walks every tracked object, which
shows up as a 10-20 ms pause in whatever request is running (the feed p99). After a bulk load,
``settle_heap`` collects once and moves everything alive into the permanent generation
(``gc.freeze``), so later collections only walk objects created since. Frozen objects are still
freed by reference counting; only reference cycles among them are no longer collected, which
the state here does not form.

A state that keeps growing after start-up (users and co-visit rows the stream adds) brings the
walks back: every time the tracked objects grow by a quarter, Python runs a full collection over
all of them, and in the recommender under the broker benchmark those took up to 125-170 ms, each a
stall of its event loop. ``freeze_after_full_collections`` freezes what survives each full
collection, right after it (no garbage is left then to be frozen), so the next one walks only what
was created since. What is alive then includes short-lived objects in reference cycles (a request's
or a task's), which, frozen, would never be collected once they die; so every ``REVISIT``-th full
collection unfreezes everything first and walks it all, as Python would have: the leak is bounded,
and one full collection in ``REVISIT`` pauses as long as before.
"""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect once, then freeze what survives; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


REVISIT = 8


class _Freezer:
    def __init__(self) -> None:
        self.full = 0

    def __call__(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.full += 1
            if self.full % REVISIT == 0:  # this one walks everything again: cycles frozen alive, dead since, go
                gc.unfreeze()
        else:
            gc.freeze()


_freezer = _Freezer()


def freeze_after_full_collections(on: bool = True) -> None:
    """After each full collection, freeze its survivors (``on``; idempotent), or stop doing so."""
    if _freezer in gc.callbacks:
        gc.callbacks.remove(_freezer)
    if on:
        _freezer.full = 0
        gc.callbacks.append(_freezer)
