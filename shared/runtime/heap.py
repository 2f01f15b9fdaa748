"""Keep Python's cycle collector away from long-lived state.

A service that holds a large in-memory state (a catalogue of 100k videos, thousands of user
states) pays for it in every full collection: the collector walks every tracked object, which
shows up as a 10-20 ms pause in whatever request is running (the feed p99). After a bulk load,
``settle_heap`` collects once and moves everything alive into the permanent generation
(``gc.freeze``), so later collections only walk objects created since. Frozen objects are still
freed by reference counting; only reference cycles among them are no longer collected, which
the state here does not form.
"""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect once, then freeze what survives; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
