"""vectord's index, WAL, gate and durable layer in-process, with plain objects."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lakehouse_common.config import VectorSettings
from lakehouse_common.contracts.vectors import (
    CreateIndexRequest,
    SearchRequest,
    json_equal,
    metadata_matches,
)
from lakehouse_common.errors import Conflict, InvalidInput, NotFound, UnprocessableEntity
from services.vectord.durable import DurableIndex
from services.vectord.index import IndexParams, Tuning, VectorIndex
from services.vectord.locks import SearchGate
from services.vectord.service import VectorService
from services.vectord.wal import (
    AddRecord,
    DeleteRecord,
    WalCorrupt,
    WalWriter,
    encode,
    list_segments,
    read_segment,
    segment_name,
)
from tests.support.vectors import Item, unit_rows

DIM = 8


def params(space: str = "cosine", name: str = "t") -> IndexParams:
    return IndexParams(name, DIM, space, 16, 100, "2024-01-01T00:00:00+00:00")  # type: ignore[arg-type]


def fill(index: VectorIndex, vectors: np.ndarray, prefix: str = "i") -> list[str]:
    ids = [f"{prefix}{n}" for n in range(len(vectors))]
    items = [
        Item(i, v, {"n": n, "odd": n % 2 == 1})
        for n, (i, v) in enumerate(zip(ids, vectors, strict=True))
    ]
    index.apply_add(index.prepare_add(items))
    return ids


class TestWal:
    def test_records_round_trip(self, tmp_path: Path) -> None:
        vectors = np.random.default_rng(0).normal(size=(3, DIM)).astype(np.float32)
        wal = WalWriter(tmp_path, 1)
        wal.append(AddRecord(["a", "b", "ç"], vectors, [{"x": 1}, {}, {"y": [1, "z"]}]))
        wal.append(DeleteRecord(["b"]))
        wal.close()
        records = [r for _, r in read_segment(tmp_path / segment_name(1), DIM, last=True)]
        add, delete = records
        assert isinstance(add, AddRecord) and isinstance(delete, DeleteRecord)
        assert add.ids == ["a", "b", "ç"] and add.metadata[2] == {"y": [1, "z"]}
        np.testing.assert_array_equal(add.vectors, vectors)
        assert delete.ids == ["b"]

    def test_a_big_batch_is_one_compact_record(self) -> None:
        vectors = np.zeros((1000, 384), dtype=np.float32)
        frame = encode(AddRecord([f"id{n}" for n in range(1000)], vectors, [{}] * 1000))
        assert len(frame) < 1000 * 384 * 4 + 20_000  # raw float32, not text

    @pytest.mark.parametrize("cut", [1, 5, 13, 100])
    def test_torn_tail_is_ignored_and_truncated(self, tmp_path: Path, cut: int) -> None:
        wal = WalWriter(tmp_path, 1)
        first = AddRecord(["a"], np.ones((1, DIM), np.float32), [{}])
        wal.append(first)
        wal.close()
        path = tmp_path / segment_name(1)
        good = path.stat().st_size
        frame = encode(AddRecord(["b"], np.ones((1, DIM), np.float32), [{}]))
        with path.open("ab") as handle:
            handle.write(frame[: len(frame) - cut])
        ends = [end for end, _ in read_segment(path, DIM, last=True)]
        assert ends == [good]
        WalWriter(tmp_path, 1, valid_size=ends[-1]).close()
        assert path.stat().st_size == good

    def test_damage_before_intact_records_is_corruption(self, tmp_path: Path) -> None:
        wal = WalWriter(tmp_path, 1)
        for n in range(3):
            wal.append(DeleteRecord([f"x{n}"]))
        wal.close()
        path = tmp_path / segment_name(1)
        data = bytearray(path.read_bytes())
        data[14] ^= 0xFF  # inside the first record's payload
        path.write_bytes(bytes(data))
        with pytest.raises(WalCorrupt):
            list(read_segment(path, DIM, last=True))

    def test_torn_record_in_an_older_segment_is_corruption(self, tmp_path: Path) -> None:
        path = tmp_path / segment_name(1)
        path.write_bytes(encode(DeleteRecord(["x"]))[:-2])
        with pytest.raises(WalCorrupt):
            list(read_segment(path, DIM, last=False))

    def test_rotate_starts_the_next_segment(self, tmp_path: Path) -> None:
        wal = WalWriter(tmp_path, 3)
        assert wal.rotate() == 4
        wal.close()
        assert [seq for seq, _ in list_segments(tmp_path)] == [3, 4]


class TestIndex:
    def test_exact_and_hnsw_agree_on_a_clean_dataset(self) -> None:
        data = unit_rows(np.random.default_rng(1), 300, DIM)
        exact = VectorIndex(params(), Tuning(exact_threshold=10_000))
        hnsw = VectorIndex(params(), Tuning(exact_threshold=0, default_ef=200))
        fill(exact, data)
        fill(hnsw, data)
        queries = exact.prepare_queries(unit_rows(np.random.default_rng(2), 20, DIM).tolist())
        for a, b in zip(exact.search(queries, 5), hnsw.search(queries, 5), strict=True):
            assert [h.id for h in a] == [h.id for h in b]
            np.testing.assert_allclose([h.distance for h in a], [h.distance for h in b], atol=1e-5)

    @pytest.mark.parametrize("space", ["cosine", "l2", "ip"])
    def test_exact_distances_match_hnswlib(self, space: str) -> None:
        data = np.random.default_rng(3).normal(size=(100, DIM)).astype(np.float32)
        exact = VectorIndex(params(space), Tuning(exact_threshold=10_000))
        hnsw = VectorIndex(params(space), Tuning(exact_threshold=0, default_ef=200))
        fill(exact, data)
        fill(hnsw, data)
        q = exact.prepare_queries([data[7].tolist()])
        a, b = exact.search(q, 10)[0], hnsw.search(q, 10)[0]
        assert [h.id for h in a] == [h.id for h in b]
        np.testing.assert_allclose([h.distance for h in a], [h.distance for h in b], atol=1e-4)

    def test_tight_filter_on_hnsw_path_still_returns_k(self) -> None:
        index = VectorIndex(params(), Tuning(exact_threshold=5))
        ids = fill(index, unit_rows(np.random.default_rng(4), 200, DIM))
        q = index.prepare_queries([[1.0] * DIM])
        hits = index.search(q, 10, filter={"odd": True}, exclude_ids=ids[1:40:2])[0]
        assert len(hits) == 10
        assert all(h.metadata["odd"] for h in hits)
        assert not {h.id for h in hits} & set(ids[1:40:2])

    def test_upsert_keeps_one_entry_per_id_even_with_vacant_slots(self) -> None:
        index = VectorIndex(params("l2"), Tuning(exact_threshold=0, initial_capacity=8))
        data = np.random.default_rng(5).normal(size=(8, DIM)).astype(np.float32)
        ids = fill(index, data)
        index.apply_delete(ids[:3])  # vacant slots now exist
        new = data[5] + 10
        index.apply_add(index.prepare_add([Item(ids[5], new, {"v": 2})]))
        stats = index.stats()
        assert (stats.count, stats.capacity) == (5, 8)
        hits = index.search(index.prepare_queries([new.tolist()]), 8)[0]
        assert [h.id for h in hits].count(ids[5]) == 1 and hits[0].id == ids[5]
        assert hits[0].metadata == {"v": 2}

    def test_capacity_doubles(self) -> None:
        index = VectorIndex(params(), Tuning(initial_capacity=4))
        fill(index, unit_rows(np.random.default_rng(6), 9, DIM))
        assert index.stats().capacity == 16

    @pytest.mark.parametrize(
        "items",
        [
            [Item("a", [1.0] * (DIM - 1))],
            [Item("a", [1.0] * DIM), Item("a", [2.0] * DIM)],
            [Item("", [1.0] * DIM)],
            [Item("a", [float("nan")] + [1.0] * (DIM - 1))],
            [Item("a", [float("inf")] + [1.0] * (DIM - 1))],
            [Item("a", [0.0] * DIM)],
            [],
        ],
    )
    def test_bad_batches_raise_invalid_input(self, items: list[Item]) -> None:
        with pytest.raises(InvalidInput):
            VectorIndex(params(), Tuning()).prepare_add(items)

    def test_filters_answer_what_a_scan_would(self) -> None:
        """Postings (built on first use, kept by upserts and deletes) against `metadata_matches`
        over every item, for scalar, mixed and container filters."""
        rng = np.random.default_rng(9)
        values: list[Any] = ["IL", "MI", 1, 1.0, 2, True, False, None, ["a"], {"x": 1}]
        index = VectorIndex(params(), Tuning(exact_threshold=50))

        def meta() -> dict[str, Any]:
            keys = ("state", "flag", "tags")
            return {k: values[rng.integers(len(values))] for k in keys if rng.random() < 0.8}

        def batch(ids: list[str]) -> None:
            rows = unit_rows(rng, len(ids), DIM)
            items = [Item(i, v, meta()) for i, v in zip(ids, rows, strict=True)]
            index.apply_add(index.prepare_add(items))

        def check() -> None:
            model = {i: index.get(i)[1] for i in index.ids()}
            q = index.prepare_queries([[1.0] * DIM])
            for key in ("state", "flag", "tags"):
                for value in values:
                    for wanted in ({key: value}, {key: value, "state": "IL"}):
                        hits = index.search(q, 500, filter=wanted)[0]
                        expected = {i for i, m in model.items() if metadata_matches(m, wanted)}
                        assert {h.id for h in hits} == expected, wanted

        batch([f"i{n}" for n in range(120)])
        check()  # builds the postings
        batch([f"i{n}" for n in range(0, 120, 3)])  # upserts with new metadata
        index.apply_delete([f"i{n}" for n in range(1, 120, 5)])
        batch([f"j{n}" for n in range(30)])  # new items reuse vacant slots
        check()

    def test_json_equality(self) -> None:
        assert json_equal(1, 1.0) and json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
        assert not json_equal(True, 1) and not json_equal(0, False) and not json_equal("1", 1)


class TestGate:
    def test_readers_share_writers_exclude_and_ef_is_stable_inside(self) -> None:
        gate = SearchGate()
        current = {"ef": 0}
        inside: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()

        def reader(ef: int) -> None:
            for _ in range(200):
                with gate.read(ef, lambda e: current.update(ef=e)):
                    with lock:
                        inside.append("r")
                        if "w" in inside:
                            errors.append("reader with writer")
                    if current["ef"] != ef:
                        errors.append("ef changed under a reader")
                    with lock:
                        inside.remove("r")

        def writer() -> None:
            for _ in range(100):
                with gate.write():
                    with lock:
                        if inside:
                            errors.append("writer not alone")
                        inside.append("w")
                    time.sleep(0)
                    with lock:
                        inside.remove("w")

        threads = [threading.Thread(target=reader, args=(ef,)) for ef in (10, 10, 20, 30)]
        threads += [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "deadlock"
        assert errors == []


class TestDurableIndex:
    def test_reopen_replays_the_wal(self, tmp_path: Path) -> None:
        root = tmp_path / "ix"
        durable = DurableIndex.create(root, params(), Tuning())
        data = unit_rows(np.random.default_rng(7), 20, DIM)
        durable.add(durable.index.prepare_add([Item(f"i{n}", v) for n, v in enumerate(data)]))
        durable.delete(["i3", "nope"])
        durable.wal.close()  # a crash: no snapshot
        again = DurableIndex.open(root, Tuning())
        assert len(again.index) == 19 and again.wal_records == 2
        np.testing.assert_allclose(again.index.get("i4")[0], data[4], atol=1e-6)

    def test_snapshot_then_more_writes_then_reopen(self, tmp_path: Path) -> None:
        root = tmp_path / "ix"
        durable = DurableIndex.create(root, params("l2"), Tuning())
        rows = np.random.default_rng(8).normal(size=(30, DIM)).astype(np.float32)
        durable.add(durable.index.prepare_add([Item(f"i{n}", rows[n]) for n in range(20)]))
        assert durable.snapshot()
        durable.add(durable.index.prepare_add([Item(f"i{n}", rows[n]) for n in range(20, 30)]))
        durable.delete(["i0"])
        durable.wal.close()
        names = sorted(p.name for p in root.iterdir())
        assert names == ["index.json", "snapshot-00000002", "wal-00000002.log"]
        again = DurableIndex.open(root, Tuning())
        assert len(again.index) == 29 and again.last_snapshot is not None
        np.testing.assert_array_equal(again.index.get("i25")[0], rows[25])

    def test_unfinished_snapshot_is_ignored(self, tmp_path: Path) -> None:
        root = tmp_path / "ix"
        durable = DurableIndex.create(root, params(), Tuning())
        durable.add(durable.index.prepare_add([Item("a", [1.0] * DIM)]))
        durable.wal.close()
        (root / "snapshot-00000009.tmp").mkdir()
        (root / "snapshot-00000007").mkdir()  # no manifest: never completed
        again = DurableIndex.open(root, Tuning())
        assert again.index.ids() == ["a"]
        assert not (root / "snapshot-00000009.tmp").exists()


class TestService:
    def test_create_is_idempotent_and_conflicts_on_difference(self, tmp_path: Path) -> None:
        service = VectorService(tmp_path, VectorSettings())
        service.open()
        _, created = service.create_index("a", CreateIndexRequest(dim=4))
        assert created
        _, created = service.create_index("a", CreateIndexRequest(dim=4, space="cosine"))
        assert not created
        with pytest.raises(Conflict):
            service.create_index("a", CreateIndexRequest(dim=4, M=32))
        with pytest.raises(InvalidInput):
            service.create_index("A", CreateIndexRequest(dim=4))
        with pytest.raises(NotFound):
            service.info("b")
        with pytest.raises(UnprocessableEntity):
            service.search("a", SearchRequest(vector=[1.0] * 4, k=10_000))
        service.close()
