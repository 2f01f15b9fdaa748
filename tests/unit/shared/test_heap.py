import gc
import weakref

from shared.runtime import heap
from shared.runtime.heap import freeze_after_collections, settle_heap


def test_settle_heap_freezes_what_is_alive_and_keeps_it_usable():
    state = {f"user{i}": {"seen": [i, i + 1]} for i in range(1000)}
    try:
        frozen = settle_heap()
        assert frozen >= 1000 and gc.get_freeze_count() == frozen
        state["user1"]["seen"].append(3)  # frozen objects stay ordinary, mutable objects
        assert state["user1"]["seen"] == [1, 2, 3]
    finally:
        gc.unfreeze()


def test_survivors_of_an_older_collection_are_frozen_and_garbage_is_not():
    """The hook freezes what a collection of generation 1 or 2 leaves alive, so the next walks only newer objects;
    a cycle that was garbage at that moment is collected first, never frozen; the youngest collections freeze
    nothing."""
    class Node:
        pass

    gc.unfreeze()
    freeze_after_collections()
    freeze_after_collections()  # idempotent: one hook
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
        gc.collect(0)  # the youngest generation's collection freezes nothing
        assert gc.get_freeze_count() == frozen
        gc.collect(1)
        assert gc.get_freeze_count() >= frozen + 10 and len(alive) + len(young) == 110
    finally:
        freeze_after_collections(on=False)
        gc.unfreeze()
    assert heap._freezer not in gc.callbacks


def test_a_cycle_frozen_alive_is_collected_by_the_first_full_collection_after_the_revisit_time_once_it_dies():
    """A reference cycle alive at a collection is frozen with the rest; once dropped, it is freed by the first full
    collection after ``revisit_s`` (here on a clock the test moves), not leaked for ever, and not before."""
    class Node:
        pass

    now = [0.0]
    gc.unfreeze()
    gc.disable()  # only the collections below run
    freeze_after_collections(revisit_s=600, clock=lambda: now[0])
    try:
        held = Node()
        held.me = held
        gone = weakref.ref(held)
        gc.collect()  # frozen alive
        del held
        now[0] = 599
        gc.collect()
        assert gone() is not None, "frozen: this collection did not walk it"
        now[0] = 600
        gc.collect()
        assert gone() is None
        again = Node()
        again.me = again
        gone = weakref.ref(again)
        gc.collect()
        del again
        now[0] = 1199
        gc.collect()
        assert gone() is not None, "the time counts from the last walk of everything"
    finally:
        freeze_after_collections(on=False)
        gc.unfreeze()
        gc.enable()
