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
was created since.
"""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect once, then freeze what survives; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _freeze_survivors(phase: str, info: dict) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def freeze_after_full_collections(on: bool = True) -> None:
    """After each full collection, freeze its survivors (``on``; idempotent), or stop doing so."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    if on:
        gc.callbacks.append(_freeze_survivors)
