"""A hypothesis state machine: random adds, upserts, deletes, searches and crash-reopens of a
durable index against a dict model. Invariants: same ids, same vectors and metadata, searches
answer min(k, qualifying) live hits nearest first, capacity never exceeds what the peak live
count needs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lakehouse_common.contracts.vectors import metadata_matches
from services.vectord.durable import DurableIndex
from services.vectord.index import IndexParams, Tuning
from tests.support.vectors import Item

DIM = 4
IDS = st.sampled_from([f"k{n}" for n in range(24)])
VECTORS = st.lists(
    st.floats(-10, 10, allow_nan=False, width=32), min_size=DIM, max_size=DIM
).filter(lambda v: sum(x * x for x in v) > 1e-3)
# Values that JSON equality tells apart although Python's == does not (`true` vs `1`), that it
# joins (`1` and `1.0`), and a container (filtered item by item, not from the postings).
TAGS = st.sampled_from(["a", "b", "c", 1, 1.0, True, None, ["x"]])
METADATA = st.none() | TAGS  # None: the item has no `tag` key at all
FILTERS = st.none() | TAGS.map(lambda tag: {"tag": tag})


class DurableIndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="vectord-prop-"))
        self.tuning = Tuning(default_ef=32, exact_threshold=8, initial_capacity=4)
        params = IndexParams("p", DIM, "l2", 8, 50, "2024-01-01T00:00:00+00:00")
        self.durable = DurableIndex.create(self.tmp / "p", params, self.tuning)
        self.model: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        self.peak = 0  # most live items ever: capacity grows with it and never shrinks

    def teardown(self) -> None:
        self.durable.wal.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(
        batch=st.lists(
            st.tuples(IDS, VECTORS, METADATA), min_size=1, max_size=6, unique_by=lambda t: t[0]
        )
    )
    def add(self, batch: list[tuple[str, list[float], Any]]) -> None:
        metas = [{} if tag is None else {"tag": tag} for _, _, tag in batch]
        items = [Item(i, v, meta) for (i, v, _), meta in zip(batch, metas, strict=True)]
        self.durable.add(self.durable.index.prepare_add(items))
        for (i, v, _), meta in zip(batch, metas, strict=True):
            self.model[i] = (np.array(v, dtype=np.float32), meta)
        self.peak = max(self.peak, len(self.model))

    @rule(ids=st.lists(IDS, min_size=1, max_size=5))
    def delete(self, ids: list[str]) -> None:
        deleted, missing = self.durable.delete(ids)
        assert set(deleted) == {i for i in ids if i in self.model}
        assert set(missing) == {i for i in ids if i not in self.model}
        for i in ids:
            self.model.pop(i, None)

    @rule()
    def snapshot(self) -> None:
        self.durable.snapshot()

    @rule()
    def crash_and_reopen(self) -> None:
        self.durable.wal.close()
        self.durable = DurableIndex.open(self.tmp / "p", self.tuning)

    @rule(q=VECTORS, k=st.integers(1, 30), wanted=FILTERS, exclude=st.lists(IDS, max_size=4))
    def search(
        self, q: list[float], k: int, wanted: dict[str, Any] | None, exclude: list[str]
    ) -> None:
        index = self.durable.index
        hits = index.search(index.prepare_queries([q]), k, filter=wanted, exclude_ids=exclude)[0]
        qualifying = {
            i: float(((v - np.array(q, dtype=np.float32)) ** 2).sum())
            for i, (v, meta) in self.model.items()
            if metadata_matches(meta, wanted) and i not in exclude
        }
        assert len(hits) == min(k, len(qualifying))
        assert len({h.id for h in hits}) == len(hits)
        for h in hits:
            assert h.id in qualifying
            assert abs(h.distance - qualifying[h.id]) <= 1e-3 * max(1.0, qualifying[h.id])
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)

    @invariant()
    def same_items(self) -> None:
        index = self.durable.index
        assert sorted(index.ids()) == sorted(self.model)
        for i, (v, meta) in self.model.items():
            got, got_meta = index.get(i)
            np.testing.assert_array_equal(np.array(got, dtype=np.float32), v)
            assert got_meta == meta

    @invariant()
    def capacity_is_bounded(self) -> None:
        stats = self.durable.index.stats()
        assert stats.count + stats.deleted <= stats.capacity
        # Doubling from the initial 4 only when live items need it (vacant slots are reused).
        assert stats.capacity <= max(4, 2 * self.peak)


TestDurableIndexMachine = DurableIndexMachine.TestCase
TestDurableIndexMachine.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
