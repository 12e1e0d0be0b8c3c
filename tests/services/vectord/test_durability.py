"""vectord durability on real daemons: graceful restart, kill -9 mid-stream, snapshot + crash.

Each test has its own vectord (and data dir), since each one stops or kills it.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.stack import LiveStack
from tests.support.vectors import index_name, unit_rows

DIM = 16


@pytest.fixture
def solo(tmp_path: Path) -> Iterator[Any]:
    """Factory: a vectord of its own with extra `[vector]` settings."""
    stacks: list[LiveStack] = []

    def start(**vector: Any) -> LiveStack:
        live = LiveStack.create(tmp_path / f"s{len(stacks)}", {"vector": vector})
        stacks.append(live)
        live.start("vectord")
        return live

    yield start
    for live in stacks:
        live.stop()


def item_vector(item_id: str, version: int) -> np.ndarray:
    """A deterministic vector per (id, version), so a reader can tell which write it sees."""
    seed = zlib.crc32(f"{item_id}@{version}".encode())
    row: np.ndarray = unit_rows(np.random.default_rng(seed), 1, DIM)[0]
    return row


def assert_items(vd: httpx.Client, name: str, expected: dict[str, int]) -> None:
    """Every id in `expected` is present with the vector and metadata of that version."""
    for item_id, version in expected.items():
        resp = vd.get(f"/v1/vectors/indexes/{name}/items/{item_id}")
        assert resp.status_code == 200, (item_id, resp.text)
        got = resp.json()
        assert got["metadata"] == {"v": version}, item_id
        np.testing.assert_allclose(got["vector"], item_vector(item_id, version), atol=1e-6)


def add_version(vd: httpx.Client, name: str, ids: list[str], version: int) -> httpx.Response:
    items = [
        {"id": i, "vector": item_vector(i, version).tolist(), "metadata": {"v": version}}
        for i in ids
    ]
    return vd.post(f"/v1/vectors/indexes/{name}/add", json={"items": items})


class TestRestart:
    def test_graceful_restart_keeps_indexes_items_and_deletions(self, solo: Any) -> None:
        live: LiveStack = solo()
        name, other = index_name(), index_name()
        with live.client("vectord") as vd:
            vd.put(f"/v1/vectors/indexes/{name}", json={"dim": DIM, "space": "l2", "M": 8})
            vd.put(f"/v1/vectors/indexes/{other}", json={"dim": 4})
            ids = [f"i{n}" for n in range(50)]
            add_version(vd, name, ids, 1)
            add_version(vd, name, ids[:10], 2)
            vd.post(f"/v1/vectors/indexes/{name}/delete", json={"ids": ids[40:]})
            before = vd.get(f"/v1/vectors/indexes/{name}").json()
            probe = {"vector": item_vector("i3", 2).tolist(), "k": 5}
            hits_before = vd.post(f"/v1/vectors/indexes/{name}/search", json=probe).json()
        live.stop()
        live.start("vectord")
        with live.client("vectord") as vd:
            after = vd.get(f"/v1/vectors/indexes/{name}").json()
            assert after["last_snapshot"] is not None  # a final snapshot on shutdown
            assert after["wal_records"] == 0
            for key in ("dim", "space", "M", "ef_construction", "count", "created_at"):
                assert after[key] == before[key]
            assert_items(vd, name, {**{i: 1 for i in ids[10:40]}, **{i: 2 for i in ids[:10]}})
            for gone in ids[40:]:
                assert vd.get(f"/v1/vectors/indexes/{name}/items/{gone}").status_code == 404
            hits_after = vd.post(f"/v1/vectors/indexes/{name}/search", json=probe).json()
            assert hits_after == hits_before
            assert vd.get(f"/v1/vectors/indexes/{other}").json()["dim"] == 4

    def test_deleted_index_stays_deleted(self, solo: Any) -> None:
        live: LiveStack = solo()
        name = index_name()
        with live.client("vectord") as vd:
            vd.put(f"/v1/vectors/indexes/{name}", json={"dim": DIM})
            add_version(vd, name, ["a"], 1)
            assert vd.delete(f"/v1/vectors/indexes/{name}").status_code == 200
        live.kill_9("vectord")
        live.start("vectord")
        with live.client("vectord") as vd:
            assert vd.get(f"/v1/vectors/indexes/{name}").status_code == 404


@pytest.mark.fault
class TestCrash:
    def test_kill_9_mid_stream_loses_no_acknowledged_write(self, solo: Any) -> None:
        # Snapshots only by interval, far away: everything must come back from the WAL.
        live: LiveStack = solo(snapshot_interval_s=3600.0)
        name = index_name()
        acked: dict[str, int] = {}
        in_flight: list[tuple[list[str], int]] = []
        enough = threading.Event()
        with live.client("vectord") as vd:
            vd.put(f"/v1/vectors/indexes/{name}", json={"dim": DIM})

        def writer() -> None:
            with httpx.Client(base_url=live.url("vectord"), timeout=10.0) as client:
                batch = 0
                while True:
                    # New ids, and upserts of older ones (their latest version must survive).
                    ids = [f"b{batch}-{n}" for n in range(8)]
                    ids += [f"b{batch // 2}-{n}" for n in range(2)] if batch else []
                    ids = list(dict.fromkeys(ids))
                    version = batch + 1
                    in_flight[:] = [(ids, version)]
                    try:
                        resp = add_version(client, name, ids, version)
                    except httpx.HTTPError:
                        return  # the daemon died under us: this batch was never acknowledged
                    assert resp.status_code == 200, resp.text
                    acked.update(dict.fromkeys(ids, version))
                    in_flight.clear()
                    batch += 1
                    if batch >= 40:
                        enough.set()

        thread = threading.Thread(target=writer)
        thread.start()
        assert enough.wait(60), "the writer did not get 40 batches acknowledged"
        live.kill_9("vectord")
        thread.join(20)
        assert not thread.is_alive()
        live.start("vectord")
        with live.client("vectord") as vd:
            info = vd.get(f"/v1/vectors/indexes/{name}").json()
            unacked = {i for ids, _ in in_flight for i in ids} - set(acked)
            assert info["count"] in {len(acked), len(acked) + len(unacked)}
            assert_items(
                vd, name, {i: v for i, v in acked.items() if not _maybe_newer(i, in_flight)}
            )
            for ids, version in in_flight:
                # The batch that was cut off is all there or all absent (one WAL record).
                seen = [version_of(vd, name, i) for i in ids]
                assert all(v in {version, acked.get(i)} for v, i in zip(seen, ids, strict=True))
                assert len({v == version for v in seen}) == 1, seen
            hits = vd.post(
                f"/v1/vectors/indexes/{name}/search",
                json={"vector": item_vector("b0-0", 1).tolist(), "k": 3},
            )
            assert hits.status_code == 200 and len(hits.json()["results"]) == 3
            # It takes writes again after the crash.
            assert add_version(vd, name, ["after"], 1).status_code == 200

    def test_snapshot_then_crash_keeps_everything(self, solo: Any) -> None:
        live: LiveStack = solo(snapshot_every_ops=5)
        name = index_name()
        root = live.settings.data_dir / "vectors" / name
        expected: dict[str, int] = {}
        with live.client("vectord") as vd:
            vd.put(f"/v1/vectors/indexes/{name}", json={"dim": DIM, "space": "ip"})
            for batch in range(12):
                ids = [f"s{batch}-{n}" for n in range(20)]
                assert add_version(vd, name, ids, 1).status_code == 200
                expected.update(dict.fromkeys(ids, 1))
            deadline = time.monotonic() + 20
            while vd.get(f"/v1/vectors/indexes/{name}").json()["last_snapshot"] is None:
                assert time.monotonic() < deadline, "no snapshot was taken"
                time.sleep(0.05)
            assert any(p.name.startswith("snapshot-") for p in root.iterdir())
            # Keep writing after the snapshot: upserts, deletes, new ids, then crash.
            assert add_version(vd, name, [f"s0-{n}" for n in range(5)], 2).status_code == 200
            expected.update({f"s0-{n}": 2 for n in range(5)})
            vd.post(f"/v1/vectors/indexes/{name}/delete", json={"ids": ["s1-0", "s1-1"]})
            del expected["s1-0"], expected["s1-1"]
            for batch in range(12, 15):
                ids = [f"s{batch}-{n}" for n in range(20)]
                assert add_version(vd, name, ids, 1).status_code == 200
                expected.update(dict.fromkeys(ids, 1))
        live.kill_9("vectord")
        live.start("vectord")
        with live.client("vectord") as vd:
            info = vd.get(f"/v1/vectors/indexes/{name}").json()
            assert info["count"] == len(expected)
            assert info["space"] == "ip"
            assert_items(vd, name, expected)
            assert vd.get(f"/v1/vectors/indexes/{name}/items/s1-0").status_code == 404
        assert not list(root.glob("*.tmp"))


def version_of(vd: httpx.Client, name: str, item_id: str) -> int | None:
    resp = vd.get(f"/v1/vectors/indexes/{name}/items/{item_id}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    version: int = resp.json()["metadata"]["v"]
    return version


def _maybe_newer(item_id: str, in_flight: list[tuple[list[str], int]]) -> bool:
    """An acknowledged id that the cut-off batch was upserting may show either version."""
    return any(item_id in ids for ids, _ in in_flight)
