"""One vector index in memory (SPEC §5): string ids over an hnswlib graph, metadata, search.

- Ids ↔ labels: every id gets a fresh int label, never reused. hnswlib's `replace_deleted`
  reuses the *slot* of a deleted element (so capacity does not leak) but moves the label
  lookup; reusing a label that still names a deleted slot would let a later replacement erase
  the live one's lookup entry.
- Upsert: a known id keeps its label and hnswlib updates the point in place
  (`replace_deleted=False`: with it, hnswlib would put a known label into a vacant slot and
  leave the old slot live — a duplicate). New ids go in with `replace_deleted=True`.
- Capacity doubles (`resize_index`) when live items + new ids would not fit.
- Search: exact (numpy over the live vectors) below `exact_threshold` live items or when a
  filter leaves at most that many candidates; HNSW otherwise, with `filter` / `exclude_ids`
  applied inside hnswlib's search through its label `filter` callable; if hnswlib cannot find
  `k` qualifying items it raises, and the search falls back to exact over the candidates —
  so `k` hits come back whenever `k` items qualify.
- Hits are the contract's `Hit` (the one hit shape of the search path: routes write it as is).
- Concurrency: `SearchGate` (many readers sharing one ef, or one writer). The durable layer
  (`durable.py`) also serialises writers so the WAL order is the apply order.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import orjson

from lakehouse_common.contracts.vectors import Hit, Space
from lakehouse_common.errors import InvalidInput, NotFound
from services.vectord.locks import SearchGate
from services.vectord.postings import Postings
from services.vectord.wal import AddRecord

HNSW_FILE = "hnsw.bin"
STATE_FILE = "state.json"


@dataclass(frozen=True)
class IndexParams:
    name: str
    dim: int
    space: Space
    M: int
    ef_construction: int
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "space": self.space,
            "M": self.M,
            "ef_construction": self.ef_construction,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IndexParams:
        return cls(
            name=data["name"],
            dim=int(data["dim"]),
            space=data["space"],
            M=int(data["M"]),
            ef_construction=int(data["ef_construction"]),
            created_at=data["created_at"],
        )


@dataclass(frozen=True)
class Tuning:
    """The `[vector]` settings an index needs at run time."""

    default_ef: int = 128
    exact_threshold: int = 2000
    initial_capacity: int = 1024


@dataclass
class _ExactCache:
    labels: np.ndarray  # (n,) uint64
    matrix: np.ndarray  # (n, dim) float32, as stored (normalised for cosine)


@dataclass
class Stats:
    count: int
    deleted: int
    capacity: int


def as_matrix(rows: Sequence[Sequence[float]] | np.ndarray, dim: int, what: str) -> np.ndarray:
    """Rows → a finite (n, dim) float32 matrix, or `InvalidInput` naming the first bad row."""
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        lengths = {len(r) for r in rows}
        raise InvalidInput(
            f"{what}: vectors must all have dimension {dim}",
            details={"dimensions": sorted(lengths)},
        ) from None
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        got = matrix.shape[1] if matrix.ndim == 2 else 0
        raise InvalidInput(
            f"{what}: wrong dimension {got}, the index has dimension {dim}",
            details={"expected": dim, "got": got},
        )
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise InvalidInput(
            f"{what}: vector {row} has a NaN or infinite component (after float32 conversion)",
            details={"row": row},
        )
    return matrix


class VectorIndex:
    """An hnswlib graph with string ids and metadata; thread-safe through `gate`."""

    def __init__(self, params: IndexParams, tuning: Tuning, hnsw: Any | None = None) -> None:
        self.params = params
        self.tuning = tuning
        self.gate = SearchGate()
        if hnsw is None:
            hnsw = hnswlib.Index(space=params.space, dim=params.dim)
            hnsw.init_index(
                max_elements=tuning.initial_capacity,
                M=params.M,
                ef_construction=params.ef_construction,
                allow_replace_deleted=True,
            )
            hnsw.set_ef(tuning.default_ef)
        self._hnsw = hnsw
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._metadata: dict[int, dict[str, Any]] = {}
        self._postings = Postings()  # filter keys → labels, built per key on first use
        self._next_label = 0
        # The live vectors of a small index for exact search; dropped by every write.
        self._exact: _ExactCache | None = None

    # ----------------------------------------------------------------- validation

    def prepare_add(self, items: Sequence[Any]) -> AddRecord:
        """Validate a batch (`Item`-like objects) into a WAL record; nothing is changed yet."""
        if not items:
            raise InvalidInput("`items` is empty")
        ids = [item.id for item in items]
        self._check_ids(ids)
        dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
        if dupes:
            raise InvalidInput(
                f"duplicate ids in one batch: {dupes[:5]}", details={"duplicates": dupes[:100]}
            )
        vectors = as_matrix([item.vector for item in items], self.params.dim, "items")
        if self.params.space == "cosine":
            zero = np.linalg.norm(vectors, axis=1) == 0
            if zero.any():
                row = int(np.argmax(zero))
                raise InvalidInput(
                    f"items: vector {row} ({ids[row]!r}) is all zeros, which has no cosine "
                    "direction",
                    details={"row": row, "id": ids[row]},
                )
        return AddRecord(ids, vectors, [dict(item.metadata) for item in items])

    @staticmethod
    def _check_ids(ids: Iterable[str]) -> None:
        for i in ids:
            if not i:
                raise InvalidInput("ids must be non-empty strings")

    def prepare_queries(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        queries = as_matrix(rows, self.params.dim, "query")
        if self.params.space == "cosine":
            norms = np.linalg.norm(queries, axis=1, keepdims=True)
            if (norms == 0).any():
                raise InvalidInput("query: a zero vector has no cosine direction")
            queries = queries / norms
        return queries

    # ----------------------------------------------------------------- writes

    def apply_add(self, record: AddRecord) -> tuple[int, int]:
        """Upsert a validated batch; answer (new ids, replaced ids)."""
        with self.gate.write():
            old_pos = [i for i, item_id in enumerate(record.ids) if item_id in self._label_of]
            new_pos = [i for i, item_id in enumerate(record.ids) if item_id not in self._label_of]
            self._ensure_capacity(len(self._label_of) + len(new_pos))
            if old_pos:
                labels = [self._label_of[record.ids[i]] for i in old_pos]
                self._hnsw.add_items(record.vectors[old_pos], labels, replace_deleted=False)
                for i, label in zip(old_pos, labels, strict=True):
                    self._postings.remove(label, self._metadata[label])
                    self._metadata[label] = record.metadata[i]
                    self._postings.add(label, record.metadata[i])
            if new_pos:
                start = self._next_label
                labels = list(range(start, start + len(new_pos)))
                self._hnsw.add_items(record.vectors[new_pos], labels, replace_deleted=True)
                self._next_label = start + len(new_pos)
                for i, label in zip(new_pos, labels, strict=True):
                    item_id = record.ids[i]
                    self._label_of[item_id] = label
                    self._id_of[label] = item_id
                    self._metadata[label] = record.metadata[i]
                    self._postings.add(label, record.metadata[i])
            self._exact = None
            return len(new_pos), len(old_pos)

    def present(self, ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """Split `ids` into (known, unknown), keeping order and dropping repeats."""
        with self.gate.read():
            known: list[str] = []
            unknown: list[str] = []
            for item_id in dict.fromkeys(ids):
                (known if item_id in self._label_of else unknown).append(item_id)
            return known, unknown

    def apply_delete(self, ids: Sequence[str]) -> int:
        """Delete known ids (unknown ones are skipped); answer how many went."""
        with self.gate.write():
            gone = 0
            for item_id in ids:
                label = self._label_of.pop(item_id, None)
                if label is None:
                    continue
                self._hnsw.mark_deleted(label)
                del self._id_of[label]
                self._postings.remove(label, self._metadata.pop(label))
                gone += 1
            self._exact = None
            return gone

    def _ensure_capacity(self, needed: int) -> None:
        # Vacant deleted slots are reused (replace_deleted), so live items bound the need.
        capacity = int(self._hnsw.get_max_elements())
        if needed > capacity:
            grown = max(capacity, 1)
            while grown < needed:
                grown *= 2
            self._hnsw.resize_index(grown)

    # ----------------------------------------------------------------- reads

    def get(self, item_id: str) -> tuple[list[float], dict[str, Any]]:
        with self.gate.read():
            label = self._label_of.get(item_id)
            if label is None:
                raise NotFound(
                    f"no item {item_id!r} in index {self.params.name!r}",
                    details={"index": self.params.name, "id": item_id},
                )
            vector = self._hnsw.get_items([label])[0]
            return [float(x) for x in vector], self._metadata[label]

    def list_items(
        self, *, after: str | None, limit: int, filter: Mapping[str, Any] | None
    ) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
        """A page of (id, metadata) in id order, after `after`, passing `filter`; and the id to
        continue after, or None on the last page. Paging by id, not by label, so an item that
        stays in the index through a listing is listed exactly once, whatever else changes."""
        with self.gate.read():
            ids: Iterable[str]
            if filter:
                labels = self._postings.candidates(filter, self._metadata)
                ids = (self._id_of[label] for label in labels)
            else:
                ids = self._label_of.keys()
            if after is not None:
                ids = (i for i in ids if i > after)
            page = heapq.nsmallest(limit + 1, ids)
            items = [(i, self._metadata[self._label_of[i]]) for i in page[:limit]]
        return items, (page[limit - 1] if len(page) > limit else None)

    def stats(self) -> Stats:
        with self.gate.read():
            live = len(self._label_of)
            return Stats(
                count=live,
                deleted=int(self._hnsw.element_count) - live,
                capacity=int(self._hnsw.get_max_elements()),
            )

    def __len__(self) -> int:
        return len(self._label_of)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        ef: int | None = None,
        filter: Mapping[str, Any] | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[list[Hit]]:
        """The k nearest items to each (prepared) query row, nearest first."""
        ef = ef or self.tuning.default_ef
        live = len(self._label_of)
        exact = live < self.tuning.exact_threshold
        # Exact search needs no ef: it joins whatever ef class is inside the gate.
        with self.gate.read(None if exact else ef, self._hnsw.set_ef):
            return self._search_locked(queries, k, exact, filter, exclude_ids)

    def _search_locked(
        self,
        queries: np.ndarray,
        k: int,
        exact: bool,
        filter: Mapping[str, Any] | None,
        exclude_ids: Sequence[str],
    ) -> list[list[Hit]]:
        live = len(self._label_of)
        candidates: set[int] | None = None
        excluded: set[int] = set()
        if filter:
            candidates = self._postings.candidates(filter, self._metadata)
        if exclude_ids:
            excluded = {self._label_of[i] for i in exclude_ids if i in self._label_of}
            if candidates is not None:
                candidates -= excluded
                excluded = set()
        n_candidates = len(candidates) if candidates is not None else live - len(excluded)
        k_eff = min(k, n_candidates)
        if k_eff <= 0:
            return [[] for _ in range(len(queries))]
        small = live < self.tuning.exact_threshold
        if exact or (candidates is not None and n_candidates <= self.tuning.exact_threshold):
            return self._exact_search(queries, k_eff, candidates, excluded, live_exact=small)
        if candidates is not None:
            allowed = candidates

            def keep(label: int) -> bool:
                return label in allowed

        elif excluded:

            def keep(label: int) -> bool:
                return label not in excluded

        else:
            keep = None  # type: ignore[assignment]
        try:
            labels, distances = self._hnsw.knn_query(queries, k=k_eff, filter=keep)
        except RuntimeError:
            # hnswlib found fewer than k_eff qualifying items (tight filter, many deletions).
            return self._exact_search(queries, k_eff, candidates, excluded, live_exact=False)
        return [self._hits(row_l, row_d) for row_l, row_d in zip(labels, distances, strict=True)]

    def _hits(self, labels: Iterable[Any], distances: Iterable[Any]) -> list[Hit]:
        out = []
        for label, distance in zip(labels, distances, strict=True):
            label = int(label)
            out.append(Hit(self._id_of[label], float(distance), self._metadata[label]))
        return out

    def _live_matrix(self) -> _ExactCache:
        cache = self._exact
        if cache is None:
            labels = np.fromiter(self._id_of.keys(), dtype=np.uint64, count=len(self._id_of))
            matrix = (
                self._hnsw.get_items(labels)
                if len(labels)
                else np.empty((0, self.params.dim), dtype=np.float32)
            )
            cache = _ExactCache(labels, np.asarray(matrix, dtype=np.float32))
            self._exact = cache  # racing readers build the same thing; last one wins
        return cache

    def _exact_search(
        self,
        queries: np.ndarray,
        k: int,
        candidates: set[int] | None,
        excluded: set[int],
        *,
        live_exact: bool,
    ) -> list[list[Hit]]:
        if live_exact:
            cache = self._live_matrix()
            labels, matrix = cache.labels, cache.matrix
            if candidates is not None or excluded:
                if candidates is not None:
                    mask = np.fromiter(
                        (int(lb) in candidates for lb in labels), dtype=bool, count=len(labels)
                    )
                else:
                    mask = np.fromiter(
                        (int(lb) not in excluded for lb in labels), dtype=bool, count=len(labels)
                    )
                labels, matrix = labels[mask], matrix[mask]
        else:
            chosen = candidates if candidates is not None else set(self._id_of.keys()) - excluded
            labels = np.fromiter(chosen, dtype=np.uint64, count=len(chosen))
            matrix = np.asarray(self._hnsw.get_items(labels), dtype=np.float32)
        distances = self._distances(queries, matrix)
        k = min(k, len(labels))
        out = []
        for row in distances:
            top = np.argpartition(row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((labels[top], row[top]))]
            out.append(self._hits(labels[top], row[top]))
        return out

    def _distances(self, queries: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """(q, n) distances as hnswlib defines them for this space."""
        if self.params.space == "l2":
            sq = (
                np.einsum("ij,ij->i", queries, queries)[:, None]
                - 2.0 * queries @ matrix.T
                + np.einsum("ij,ij->i", matrix, matrix)[None, :]
            )
            out: np.ndarray = np.maximum(sq, 0.0)
            return out
        dots: np.ndarray = queries @ matrix.T
        return 1.0 - dots

    # ----------------------------------------------------------------- snapshots

    def save(self, directory: Path) -> None:
        """Write the graph and the id/metadata state into `directory` (caller holds writers
        off; searches may run: saving only reads the graph)."""
        with self.gate.read():
            self._hnsw.save_index(str(directory / HNSW_FILE))
            state = {
                "next_label": self._next_label,
                "ids": list(self._label_of.keys()),
                "labels": list(self._label_of.values()),
                "metadata": [self._metadata[label] for label in self._label_of.values()],
                "deleted_slots": int(self._hnsw.element_count) - len(self._label_of),
                "capacity": int(self._hnsw.get_max_elements()),
            }
        (directory / STATE_FILE).write_bytes(orjson.dumps(state))

    @classmethod
    def load(cls, directory: Path, params: IndexParams, tuning: Tuning) -> VectorIndex:
        state = orjson.loads((directory / STATE_FILE).read_bytes())
        hnsw = hnswlib.Index(space=params.space, dim=params.dim)
        # hnswlib loads with capacity = max(max_elements, stored elements): without the saved
        # capacity an empty index would come back with room for nothing.
        capacity = max(int(state.get("capacity", 0)), tuning.initial_capacity)
        # allow_replace_deleted=True rebuilds hnswlib's set of vacant (deleted) slots.
        hnsw.load_index(
            str(directory / HNSW_FILE), max_elements=capacity, allow_replace_deleted=True
        )
        hnsw.set_ef(tuning.default_ef)
        index = cls(params, tuning, hnsw)
        index._next_label = int(state["next_label"])
        for item_id, label, meta in zip(
            state["ids"], state["labels"], state["metadata"], strict=True
        ):
            index._label_of[item_id] = label
            index._id_of[label] = item_id
            index._metadata[label] = meta
        return index

    def ids(self) -> list[str]:
        with self.gate.read():
            return list(self._label_of)
