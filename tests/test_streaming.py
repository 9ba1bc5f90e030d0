"""`tlgen.streaming.fetched`: chunk k + 1 is asked for once chunk k is computed, and chunk k is
fetched after that."""

import numpy as np

from tlgen.streaming import fetched


class Chunk:
    """An array stand-in that records when it is waited for and fetched to the host."""

    def __init__(self, k, events):
        self.k, self.events = k, events

    def block_until_ready(self):
        self.events.append(f"ready {self.k}")
        return self

    def __array__(self, dtype=None, copy=None):
        self.events.append(f"fetch {self.k}")
        return np.full(2, self.k)


def test_each_chunk_is_computed_then_the_next_made_then_it_is_fetched_in_order():
    events = []

    def chunks(n):
        for k in range(n):
            events.append(f"make {k}")
            yield Chunk(k, events)

    got = []
    for array in fetched(chunks(3)):
        assert isinstance(array, np.ndarray)
        got.append(int(array[0]))
        events.append(f"write {got[-1]}")
    assert got == [0, 1, 2]
    assert events == ["make 0", "ready 0", "make 1", "fetch 0", "write 0", "ready 1", "make 2", "fetch 1",
                      "write 1", "ready 2", "fetch 2", "write 2"]
    assert list(fetched(chunks(0))) == []
    events.clear()
    assert [int(a[0]) for a in fetched(chunks(1))] == [0] and events == ["make 0", "ready 0", "fetch 0"]
