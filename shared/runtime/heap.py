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
stall of its event loop. ``freeze_after_collections`` freezes what survives each collection of the
older generations (1 and 2), right after it (no garbage is left then to be frozen), so full collections walk
only what was created since. What is alive then includes short-lived objects in reference cycles (a request's
or a task's), which, frozen, would never be collected once they die; so the first full collection after
``REVISIT_S`` seconds unfreezes everything first and walks it all, as Python would have: the leak is bounded by
what that time makes of such cycles (the recommender under 5,000 events/s: a few objects a second), and one pause
in ``REVISIT_S`` seconds is as long as before.

Freezing after full collections only, and walking everything at every eighth of them (how this began), still
left full collections of 20-70 ms every second or two under that load, and one of 196 ms every ten seconds or
so: each a stall of the consumer and of every request waiting behind it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def settle_heap() -> int:
    """Collect once, then freeze what survives; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


REVISIT_S = 600.0


class _Freezer:
    def __init__(self) -> None:
        self.revisit_s, self.clock = REVISIT_S, time.monotonic
        self.last = self.clock()

    def __call__(self, phase: str, info: dict) -> None:
        generation = info["generation"]
        if phase == "start":
            if generation == 2 and self.clock() - self.last >= self.revisit_s:
                self.last = self.clock()
                gc.unfreeze()  # this one walks everything again: cycles frozen alive, dead since, go
        elif generation >= 1:
            gc.freeze()


_freezer = _Freezer()


def freeze_after_collections(on: bool = True, revisit_s: float = REVISIT_S,
                             clock: Callable[[], float] = time.monotonic) -> None:
    """After each collection of generation 1 or 2, freeze its survivors (``on``; idempotent), and let the first full
    collection ``revisit_s`` seconds (by ``clock``) after the last such walk everything again; or stop doing so."""
    if _freezer in gc.callbacks:
        gc.callbacks.remove(_freezer)
    if on:
        _freezer.revisit_s, _freezer.clock = revisit_s, clock
        _freezer.last = clock()
        gc.callbacks.append(_freezer)
