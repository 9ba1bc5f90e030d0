"""`tlgen.streaming.fetched`: chunk k is fetched only once chunk k + 1 has been asked for."""

import numpy as np

from tlgen.streaming import fetched


class Chunk:
    """An array stand-in that records when it is fetched to the host."""

    def __init__(self, k, events):
        self.k, self.events = k, events

    def __array__(self, dtype=None, copy=None):
        self.events.append(f"fetch {self.k}")
        return np.full(2, self.k)


def test_each_chunk_is_fetched_after_the_next_is_made_and_in_order():
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
    assert events == ["make 0", "make 1", "fetch 0", "write 0", "make 2", "fetch 1", "write 1",
                      "fetch 2", "write 2"]
    assert list(fetched(chunks(0))) == []
    events.clear()
    assert [int(a[0]) for a in fetched(chunks(1))] == [0] and events == ["make 0", "fetch 0"]
