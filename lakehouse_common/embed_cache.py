"""The LRU cache of embeddings keyed by (model, text) (SPEC §5): embedd's cache, and matrixd's
cache of query embeddings (a repeated search skips the embedd call).

Used from the event loop only (lookups and inserts happen in request coroutines, never in a
worker thread), so it needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


class EmbeddingCache:
    """At most `capacity` unit vectors; the least recently used one goes first. 0 disables."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Vector] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model: str, text: str) -> Vector | None:
        key = (model, text)
        vector = self._entries.get(key)
        if vector is not None:
            self._entries.move_to_end(key)
        return vector

    def put(self, model: str, text: str, vector: Vector) -> None:
        if self.capacity <= 0:
            return
        key = (model, text)
        self._entries[key] = vector
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
