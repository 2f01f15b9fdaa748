import gc
import weakref

from shared.runtime import heap
from shared.runtime.heap import REVISIT, freeze_after_full_collections, settle_heap


def test_settle_heap_freezes_what_is_alive_and_keeps_it_usable():
    state = {f"user{i}": {"seen": [i, i + 1]} for i in range(1000)}
    try:
        frozen = settle_heap()
        assert frozen >= 1000 and gc.get_freeze_count() == frozen
        state["user1"]["seen"].append(3)  # frozen objects stay ordinary, mutable objects
        assert state["user1"]["seen"] == [1, 2, 3]
    finally:
        gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_and_garbage_is_not():
    """The hook freezes what a full collection leaves alive, so the next walks only newer objects; a cycle that
    was garbage at that moment is collected first, never frozen."""
    class Node:
        pass

    gc.unfreeze()
    freeze_after_full_collections()
    freeze_after_full_collections()  # idempotent: one hook
    try:
        assert sum(c is heap._freezer for c in gc.callbacks) == 1
        alive = [Node() for _ in range(100)]
        dead = Node()
        dead.me = dead  # a cycle: only the collector frees it
        gone = weakref.ref(dead)
        del dead
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen >= 100 and gone() is None
        young = [Node() for _ in range(10)]
        gc.collect(1)  # a younger collection freezes nothing
        assert gc.get_freeze_count() == frozen and len(alive) + len(young) == 110
    finally:
        freeze_after_full_collections(on=False)
        gc.unfreeze()
    assert heap._freezer not in gc.callbacks


def test_a_cycle_frozen_alive_is_collected_within_a_revisit_once_it_dies():
    """A reference cycle alive at a full collection is frozen with the rest; once dropped, it is freed by the
    next full collection that walks everything again (at most ``REVISIT`` of them), not leaked for ever."""
    class Node:
        pass

    gc.unfreeze()
    gc.disable()  # only the collections below count towards REVISIT
    freeze_after_full_collections()
    try:
        held = Node()
        held.me = held
        gone = weakref.ref(held)
        gc.collect()  # frozen alive
        del held
        gc.collect()
        assert gone() is not None, "frozen: this collection did not walk it"
        for _ in range(REVISIT):
            gc.collect()
        assert gone() is None
    finally:
        freeze_after_full_collections(on=False)
        gc.unfreeze()
        gc.enable()
