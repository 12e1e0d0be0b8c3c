"""The per-index readers–writer gate (SPEC §5: concurrent adds and searches are safe).

Many searches at once, or one writer alone. hnswlib's `ef` is per-index state (`set_ef`), so
readers also come in *ef classes*: searches sharing an ef run together; a search wanting another
ef waits until the current ones finish, then sets it. Readers that need no ef (exact search,
item reads) join any class. Waiting writers block new readers (no writer starvation), and a
waiting reader of another ef blocks new readers of the current ef (no ef starvation).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class SearchGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._ef: int | None = None
        self._writer = False
        self._writers_waiting = 0
        self._waiting_ef: Counter[int] = Counter()

    def _reader_blocked(self, ef: int | None) -> bool:
        if self._writer or self._writers_waiting:
            return True
        if self._readers == 0 or ef is None:
            return False
        if ef != self._ef:
            return True
        # Same ef as the readers inside: yield to a reader of another ef that is waiting.
        return any(n for other, n in self._waiting_ef.items() if other != ef)

    @contextmanager
    def read(
        self, ef: int | None = None, set_ef: Callable[[int], None] | None = None
    ) -> Iterator[None]:
        """Shared access; with `ef`, hnswlib's ef is `ef` for the whole block."""
        with self._cond:
            if ef is not None:
                self._waiting_ef[ef] += 1
            try:
                while self._reader_blocked(ef):
                    self._cond.wait()
            finally:
                if ef is not None:
                    self._waiting_ef[ef] -= 1
                    if not self._waiting_ef[ef]:
                        del self._waiting_ef[ef]
            if ef is not None and ef != self._ef:
                # Only reached with no reader inside (see `_reader_blocked`).
                if set_ef is not None:
                    set_ef(ef)
                self._ef = ef
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Exclusive access."""
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
