import gc

from shared.runtime.heap import settle_heap


def test_settle_heap_freezes_what_is_alive_and_keeps_it_usable():
    state = {f"user{i}": {"seen": [i, i + 1]} for i in range(1000)}
    try:
        frozen = settle_heap()
        assert frozen >= 1000 and gc.get_freeze_count() == frozen
        state["user1"]["seen"].append(3)  # frozen objects stay ordinary, mutable objects
        assert state["user1"]["seen"] == [1, 2, 3]
    finally:
        gc.unfreeze()
