"""Concurrent adds, deletes and searches on a small index, over HTTP, against a real vectord.

The original system's HNSW library panicked under concurrent writes to small indexes (SPEC §5).
Here many threads hammer a 10–50 item index — crossing the exact/HNSW threshold back and forth —
and afterwards every acknowledged write must be visible as its latest version, with no 5xx.
"""

from __future__ import annotations

import random
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from tests.support.stack import LiveStack
from tests.support.vectors import EXACT_THRESHOLD, index_name

DIM = 8
THREADS = 12
OPS_PER_THREAD = 60
OWN_IDS = 4  # ids each thread owns: their history is sequential, so the final state is known
SHARED_IDS = [f"shared-{n}" for n in range(6)]  # upserted by everyone at once


def vec(item_id: str, version: int) -> list[float]:
    rng = np.random.default_rng(zlib.crc32(f"{item_id}@{version}".encode()))
    return [float(x) for x in rng.normal(size=DIM).astype(np.float32)]


def test_concurrent_adds_deletes_searches_keep_the_index_consistent(stack: LiveStack) -> None:
    name = index_name("hammer")
    url = f"/v1/vectors/indexes/{name}"
    statuses: list[int] = []
    shared_writes: dict[str, set[int]] = {i: set() for i in SHARED_IDS}
    lock = threading.Lock()

    with stack.client("vectord") as vd:
        assert vd.put(url, json={"dim": DIM, "space": "l2"}).status_code == 201
        seed = [{"id": i, "vector": vec(i, 0), "metadata": {"v": 0}} for i in SHARED_IDS]
        assert vd.post(f"{url}/add", json={"items": seed}).status_code == 200
        for i in SHARED_IDS:
            shared_writes[i].add(0)

    def worker(t: int) -> dict[str, int | None]:
        rng = random.Random(t)
        own = [f"t{t}-{n}" for n in range(OWN_IDS)]
        state: dict[str, int | None] = dict.fromkeys(own)
        with httpx.Client(base_url=stack.url("vectord"), timeout=30.0) as client:
            for op in range(1, OPS_PER_THREAD + 1):
                roll = rng.random()
                if roll < 0.35:
                    ids = rng.sample(own, rng.randint(1, OWN_IDS)) + rng.sample(SHARED_IDS, 1)
                    version = t * 1000 + op
                    items = [
                        {"id": i, "vector": vec(i, version), "metadata": {"v": version}}
                        for i in ids
                    ]
                    resp = client.post(f"{url}/add", json={"items": items})
                    if resp.status_code == 200:
                        for i in ids:
                            if i in state:
                                state[i] = version
                        with lock:
                            for i in ids:
                                if i in shared_writes:
                                    shared_writes[i].add(version)
                elif roll < 0.5:
                    ids = rng.sample(own, rng.randint(1, 2))
                    resp = client.post(f"{url}/delete", json={"ids": ids})
                    if resp.status_code == 200:
                        body = resp.json()
                        assert set(body["deleted"]) == {i for i in ids if state[i] is not None}
                        for i in ids:
                            state[i] = None
                else:
                    query: dict[str, Any] = {
                        "vector": vec("q", op * 100 + t),
                        "k": rng.choice([1, 5, 20]),
                        "ef": rng.choice([8, 64, 200]),
                    }
                    if rng.random() < 0.3:
                        query["exclude_ids"] = rng.sample(SHARED_IDS, 2)
                    resp = client.post(f"{url}/search", json=query)
                    if resp.status_code == 200:
                        hits = resp.json()["results"]
                        assert len(hits) <= query["k"]
                        distances = [h["distance"] for h in hits]
                        assert distances == sorted(distances)
                        assert not {h["id"] for h in hits} & set(query.get("exclude_ids", []))
                with lock:
                    statuses.append(resp.status_code)
        return state

    with ThreadPoolExecutor(THREADS) as pool:
        states = list(pool.map(worker, range(THREADS)))

    assert set(statuses) == {200}, sorted(set(statuses))
    expected = {i: v for state in states for i, v in state.items()}
    with stack.client("vectord") as vd:
        for item_id, version in expected.items():
            resp = vd.get(f"{url}/items/{item_id}")
            if version is None:
                assert resp.status_code == 404, item_id
                continue
            got = resp.json()
            assert got["metadata"] == {"v": version}, item_id
            np.testing.assert_array_equal(
                np.array(got["vector"], dtype=np.float32),
                np.array(vec(item_id, version), dtype=np.float32),
            )
        for item_id in SHARED_IDS:
            got = vd.get(f"{url}/items/{item_id}").json()
            version = got["metadata"]["v"]
            assert version in shared_writes[item_id]  # one of the acknowledged writes, whole
            np.testing.assert_array_equal(
                np.array(got["vector"], dtype=np.float32),
                np.array(vec(item_id, version), dtype=np.float32),
            )
        live = sum(v is not None for v in expected.values()) + len(SHARED_IDS)
        info = vd.get(url).json()
        assert info["count"] == live
        # Every live item is findable: an exact-k search returns all of them, and each one's
        # own vector finds it first.
        hits = vd.post(f"{url}/search", json={"vector": vec("q", 0), "k": live}).json()["results"]
        assert len(hits) == live
        # Each live item's own vector finds it at distance 0 — nearly always: HNSW is
        # approximate, and after heavy concurrent upserts (hnswlib updates a point's links in
        # place) and deletes with slot reuse, an item can end up poorly linked, so even a beam
        # covering the index may miss it (CI saw 1 of ~50 once). Recall is what is promised;
        # the exact path (below `exact_threshold`, the product default 2000) has no such gap.
        found = []
        for item_id, version in expected.items():
            if version is not None:
                body = {"vector": vec(item_id, version), "k": 3, "ef": max(live, 64)}
                hits = vd.post(f"{url}/search", json=body).json()["results"]
                found.append(
                    {"id": item_id, "distance": 0.0}
                    in [{"id": h["id"], "distance": h["distance"]} for h in hits]
                )
        assert sum(found) >= 0.9 * len(found), (sum(found), len(found))
    assert THREADS * OWN_IDS + len(SHARED_IDS) > EXACT_THRESHOLD  # the index crosses it
