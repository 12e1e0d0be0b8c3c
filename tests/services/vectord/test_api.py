"""vectord's HTTP API against a real daemon: every endpoint, every refusal."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pytest

from lakehouse_common.contracts.vectors import Hit, IndexQuery, VectorClient
from lakehouse_common.errors import NotFound
from lakehouse_common.http import HttpClient
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack
from tests.support.vectors import (
    EXACT_THRESHOLD,
    INITIAL_CAPACITY,
    MAX_K,
    index_name,
    make_items,
    unit_rows,
)

DIM = 8


def create(vd: httpx.Client, name: str, **body: Any) -> httpx.Response:
    return vd.put(f"/v1/vectors/indexes/{name}", json={"dim": DIM, **body})


def add(vd: httpx.Client, name: str, items: list[dict[str, Any]]) -> httpx.Response:
    return vd.post(f"/v1/vectors/indexes/{name}/add", json={"items": items})


def search(vd: httpx.Client, name: str, **body: Any) -> httpx.Response:
    return vd.post(f"/v1/vectors/indexes/{name}/search", json=body)


@pytest.fixture
def filled(vd: httpx.Client) -> tuple[str, np.ndarray]:
    """A cosine index of 60 items (HNSW path): `w-<n>`, metadata {state, even}."""
    name = index_name()
    assert create(vd, name).status_code == 201
    vectors = unit_rows(np.random.default_rng(1), 60, DIM)
    meta = [{"state": "IL" if n % 3 == 0 else "WI", "even": n % 2 == 0} for n in range(60)]
    assert add(vd, name, make_items([f"w-{n}" for n in range(60)], vectors, meta)).is_success
    return name, vectors


class TestCreateIndex:
    def test_creates_with_defaults(self, vd: httpx.Client) -> None:
        name = index_name()
        resp = create(vd, name)
        assert resp.status_code == 201
        info = resp.json()
        assert (info["name"], info["dim"], info["space"]) == (name, DIM, "cosine")
        assert (info["M"], info["ef_construction"]) == (16, 200)
        assert info["count"] == 0 and info["capacity"] == INITIAL_CAPACITY

    def test_identical_create_is_idempotent_200(self, vd: httpx.Client) -> None:
        name = index_name()
        assert create(vd, name, space="l2", M=8).status_code == 201
        assert create(vd, name, space="l2", M=8).status_code == 200
        assert create(vd, name).status_code == 200  # omitted fields match anything

    def test_different_parameters_conflict(self, vd: httpx.Client) -> None:
        name = index_name()
        assert create(vd, name, space="l2").status_code == 201
        body = assert_envelope(create(vd, name, space="ip"), 409, "conflict")
        assert body["error"]["details"]["differences"]["space"] == {"have": "l2", "asked": "ip"}
        assert_envelope(vd.put(f"/v1/vectors/indexes/{name}", json={"dim": 9}), 409, "conflict")

    @pytest.mark.parametrize(
        "body",
        [
            {"dim": 0},
            {"dim": -3},
            {"dim": 4097},
            {"dim": 8, "space": "hamming"},
            {"dim": 8, "M": 1},
            {"space": "l2"},
            {"dim": 8, "extra": 1},
        ],
    )
    def test_bad_parameters_are_422(self, vd: httpx.Client, body: dict[str, Any]) -> None:
        assert_envelope(
            vd.put(f"/v1/vectors/indexes/{index_name()}", json=body), 422, "invalid_request"
        )

    @pytest.mark.parametrize("name", ["Upper", "-dash", "a.b", "x" * 64, "sp ace", "é"])
    def test_bad_names_are_400(self, vd: httpx.Client, name: str) -> None:
        assert_envelope(create(vd, name), 400, "invalid_input")


class TestListAndInfo:
    def test_list_shows_dim_space_count(self, vd: httpx.Client, filled: tuple[str, Any]) -> None:
        name, _ = filled
        listing = vd.get("/v1/vectors/indexes").json()
        entry = next(i for i in listing["indexes"] if i["name"] == name)
        assert entry == {"name": name, "dim": DIM, "space": "cosine", "count": 60}
        assert listing["count"] == len(listing["indexes"])

    def test_info_reports_counts_and_durability(
        self, vd: httpx.Client, filled: tuple[str, Any]
    ) -> None:
        name, _ = filled
        info = vd.get(f"/v1/vectors/indexes/{name}").json()
        assert info["count"] == 60 and info["deleted"] == 0
        assert info["capacity"] >= 60
        assert info["wal_records"] >= 1
        assert "last_snapshot" in info

    def test_unknown_index_is_404(self, vd: httpx.Client) -> None:
        assert_envelope(vd.get(f"/v1/vectors/indexes/{index_name()}"), 404, "not_found")

    def test_reachable_through_the_gateway(self, stack: LiveStack, filled: tuple[str, Any]) -> None:
        name, _ = filled
        with stack.client("gateway") as gw:
            assert gw.get(f"/v1/vectors/indexes/{name}").json()["count"] == 60


class TestDeleteIndex:
    def test_delete_removes_index_and_files(self, stack: LiveStack, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name)
        add(vd, name, make_items(["a"], unit_rows(np.random.default_rng(0), 1, DIM)))
        assert vd.delete(f"/v1/vectors/indexes/{name}").json() == {"name": name, "deleted": True}
        assert_envelope(vd.get(f"/v1/vectors/indexes/{name}"), 404, "not_found")
        assert not (stack.settings.data_dir / "vectors" / name).exists()
        assert create(vd, name).status_code == 201  # the name is free again, empty
        assert vd.get(f"/v1/vectors/indexes/{name}").json()["count"] == 0

    def test_delete_unknown_is_404(self, vd: httpx.Client) -> None:
        assert_envelope(vd.delete(f"/v1/vectors/indexes/{index_name()}"), 404, "not_found")


class TestAdd:
    def test_add_then_get_item(self, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name, space="l2")
        vectors = np.random.default_rng(2).normal(size=(3, DIM)).astype(np.float32)
        resp = add(vd, name, make_items(["a", "b/c", "ü"], vectors))
        assert resp.json() == {"added": 3, "updated": 0, "count": 3}
        for n, item_id in enumerate(["a", "b/c", "ü"]):
            got = vd.get(f"/v1/vectors/indexes/{name}/items/{item_id}").json()
            assert got["id"] == item_id and got["metadata"] == {"n": n}
            np.testing.assert_array_equal(np.array(got["vector"], dtype=np.float32), vectors[n])

    def test_upsert_replaces_vector_and_metadata(self, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name)
        old, new = unit_rows(np.random.default_rng(3), 2, DIM)
        add(vd, name, [{"id": "x", "vector": old.tolist(), "metadata": {"v": 1}}])
        resp = add(vd, name, [{"id": "x", "vector": new.tolist(), "metadata": {"v": 2}}])
        assert resp.json() == {"added": 0, "updated": 1, "count": 1}
        got = vd.get(f"/v1/vectors/indexes/{name}/items/x").json()
        assert got["metadata"] == {"v": 2}
        np.testing.assert_allclose(got["vector"], new, atol=1e-6)
        hit = search(vd, name, vector=new.tolist(), k=1).json()["results"][0]
        assert hit["id"] == "x" and abs(hit["distance"]) < 1e-5

    def test_capacity_grows_by_doubling(self, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name)
        rows = unit_rows(np.random.default_rng(4), 40, DIM)
        add(vd, name, make_items([f"g{n}" for n in range(40)], rows))
        info = vd.get(f"/v1/vectors/indexes/{name}").json()
        assert info["count"] == 40 and info["capacity"] == 4 * INITIAL_CAPACITY
        for n in (0, 17, 39):
            hit = search(vd, name, vector=rows[n].tolist(), k=1).json()["results"][0]
            assert hit["id"] == f"g{n}"

    def test_delete_and_readd_keeps_capacity_bounded(self, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name)
        rng = np.random.default_rng(5)
        for round_ in range(6):
            ids = [f"r{round_}-{n}" for n in range(INITIAL_CAPACITY)]
            assert add(vd, name, make_items(ids, unit_rows(rng, len(ids), DIM))).is_success
            vd.post(f"/v1/vectors/indexes/{name}/delete", json={"ids": ids[:14]})
        info = vd.get(f"/v1/vectors/indexes/{name}").json()
        # 6 × 16 ids added, 6 × 14 deleted: 12 live. Without slot reuse hnswlib would hold 96
        # elements (capacity 128); with it, the deleted slots are filled again.
        assert info["count"] == 12
        assert info["capacity"] <= 2 * INITIAL_CAPACITY
        assert info["count"] + info["deleted"] <= info["capacity"]

    def test_unknown_index_is_404(self, vd: httpx.Client) -> None:
        resp = add(vd, index_name(), [{"id": "a", "vector": [0.0] * DIM}])
        assert_envelope(resp, 404, "not_found")

    @pytest.mark.parametrize(
        ("items", "status", "code"),
        [
            ([], 422, "invalid_request"),
            ([{"id": "", "vector": [1.0] * DIM}], 422, "invalid_request"),
            ([{"id": "a", "vector": [1.0] * (DIM - 1)}], 400, "invalid_input"),
            (
                [{"id": "a", "vector": [1.0] * DIM}, {"id": "b", "vector": [1.0] * 3}],
                400,
                "invalid_input",
            ),
            (
                [{"id": "a", "vector": [1.0] * DIM}, {"id": "a", "vector": [2.0] * DIM}],
                400,
                "invalid_input",
            ),
            ([{"id": "a", "vector": [0.0] * DIM}], 400, "invalid_input"),  # no cosine direction
            (
                [{"id": "a", "vector": [1e39] + [1.0] * (DIM - 1)}],
                400,
                "invalid_input",
            ),  # inf in f32
            ([{"id": "a", "vector": ["x"] * DIM}], 422, "invalid_request"),
            ([{"id": "a", "vector": [1.0] * DIM, "metadata": [1]}], 422, "invalid_request"),
            ([{"vector": [1.0] * DIM}], 422, "invalid_request"),
        ],
    )
    def test_bad_items_are_refused_and_nothing_is_written(
        self, vd: httpx.Client, items: list[dict[str, Any]], status: int, code: str
    ) -> None:
        name = index_name()
        create(vd, name)
        assert_envelope(add(vd, name, items), status, code)
        info = vd.get(f"/v1/vectors/indexes/{name}").json()
        assert info["count"] == 0 and info["wal_records"] == 0

    def test_nan_and_infinity_literals_are_refused(self, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name)
        for literal in ("NaN", "Infinity", "-Infinity"):
            vec = ", ".join([literal] + ["1.0"] * (DIM - 1))
            body = f'{{"items": [{{"id": "a", "vector": [{vec}]}}]}}'
            resp = vd.post(
                f"/v1/vectors/indexes/{name}/add",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert 400 <= resp.status_code < 500, resp.text
            assert resp.json()["error"]["code"] in {"invalid_input", "invalid_request"}
        assert vd.get(f"/v1/vectors/indexes/{name}").json()["count"] == 0

    def test_malformed_json_is_422(self, vd: httpx.Client, filled: tuple[str, Any]) -> None:
        name, _ = filled
        resp = vd.post(f"/v1/vectors/indexes/{name}/add", content=b"{nope")
        assert_envelope(resp, 422, "invalid_request")


class TestDeleteItems:
    def test_unknown_ids_are_reported_not_an_error(
        self, vd: httpx.Client, filled: tuple[str, Any]
    ) -> None:
        name, _ = filled
        resp = vd.post(f"/v1/vectors/indexes/{name}/delete", json={"ids": ["w-1", "nope", "w-1"]})
        assert resp.json() == {"deleted": ["w-1"], "not_found": ["nope"], "count": 59}
        assert_envelope(vd.get(f"/v1/vectors/indexes/{name}/items/w-1"), 404, "not_found")
        hits = search(vd, name, vector=[1.0] * DIM, k=59).json()["results"]
        assert len(hits) == 59 and "w-1" not in {h["id"] for h in hits}

    def test_empty_ids_is_422(self, vd: httpx.Client, filled: tuple[str, Any]) -> None:
        name, _ = filled
        resp = vd.post(f"/v1/vectors/indexes/{name}/delete", json={"ids": []})
        assert_envelope(resp, 422, "invalid_request")

    def test_unknown_index_is_404(self, vd: httpx.Client) -> None:
        resp = vd.post(f"/v1/vectors/indexes/{index_name()}/delete", json={"ids": ["a"]})
        assert_envelope(resp, 404, "not_found")


class TestGetItem:
    def test_absent_item_is_404(self, vd: httpx.Client, filled: tuple[str, Any]) -> None:
        name, _ = filled
        assert_envelope(vd.get(f"/v1/vectors/indexes/{name}/items/zzz"), 404, "not_found")

    def test_cosine_item_vector_is_the_stored_unit_vector(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        got = vd.get(f"/v1/vectors/indexes/{name}/items/w-7").json()
        np.testing.assert_allclose(got["vector"], vectors[7], atol=1e-6)
        assert got["metadata"] == {"state": "WI", "even": False}


class TestListItems:
    @staticmethod
    def pages(vd: httpx.Client, name: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of a listing, following `next`."""
        out, after = [], None
        while True:
            query = {**params, **({"after": after} if after is not None else {})}
            page = vd.get(f"/v1/vectors/indexes/{name}/items", params=query)
            assert page.status_code == 200, page.text
            out.append(page.json())
            after = page.json()["next"]
            if after is None:
                return out

    def test_pages_cover_every_item_once_in_id_order(
        self, vd: httpx.Client, filled: tuple[str, Any]
    ) -> None:
        name, _ = filled
        pages = self.pages(vd, name, limit=7)
        ids = [item["id"] for page in pages for item in page["items"]]
        assert ids == sorted(f"w-{n}" for n in range(60))
        assert [len(p["items"]) for p in pages] == [7] * 8 + [4]
        assert pages[0]["items"][0] == {"id": "w-0", "metadata": {"state": "IL", "even": True}}

    def test_filter_is_metadata_equality(self, vd: httpx.Client, filled: tuple[str, Any]) -> None:
        name, _ = filled
        wanted = '{"state": "IL", "even": true}'
        ids = [i["id"] for p in self.pages(vd, name, limit=3, filter=wanted) for i in p["items"]]
        assert ids == sorted(f"w-{n}" for n in range(60) if n % 6 == 0)
        none = self.pages(vd, name, filter='{"even": 1}')  # JSON equality: 1 is not true
        assert none == [{"items": [], "next": None}]

    def test_items_present_throughout_come_back_once_despite_writes(
        self, vd: httpx.Client, filled: tuple[str, Any]
    ) -> None:
        name, _ = filled
        first = vd.get(f"/v1/vectors/indexes/{name}/items", params={"limit": 20}).json()
        seen = [i["id"] for i in first["items"]]
        # Meanwhile: one listed item goes, and new ids land before and after the cursor.
        assert vd.post(f"/v1/vectors/indexes/{name}/delete", json={"ids": [seen[0]]}).is_success
        fresh = make_items(["a-0", "zz-0"], unit_rows(np.random.default_rng(5), 2, DIM))
        assert add(vd, name, fresh).is_success
        rest = self.pages(vd, name, limit=20, after=first["next"])
        later = [i["id"] for p in rest for i in p["items"]]
        assert sorted(seen + later) == sorted([f"w-{n}" for n in range(60)] + ["zz-0"])

    @pytest.mark.parametrize("bad", ["[1, 2]", "not json", '"IL"'])
    def test_a_filter_that_is_not_a_json_object_is_400(
        self, vd: httpx.Client, filled: tuple[str, Any], bad: str
    ) -> None:
        name, _ = filled
        answer = vd.get(f"/v1/vectors/indexes/{name}/items", params={"filter": bad})
        assert_envelope(answer, 400, "invalid_input")

    @pytest.mark.parametrize("limit", [0, 1001, -1])
    def test_limit_outside_1_to_1000_is_422(
        self, vd: httpx.Client, filled: tuple[str, Any], limit: int
    ) -> None:
        name, _ = filled
        answer = vd.get(f"/v1/vectors/indexes/{name}/items", params={"limit": limit})
        assert_envelope(answer, 422, "invalid_request")

    def test_unknown_index_is_404(self, vd: httpx.Client) -> None:
        assert_envelope(vd.get("/v1/vectors/indexes/nope-x/items"), 404, "not_found")


class TestSearch:
    def test_single_vector_finds_itself_first(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        hits = search(vd, name, vector=vectors[5].tolist(), k=5).json()["results"]
        assert len(hits) == 5
        assert hits[0]["id"] == "w-5" and abs(hits[0]["distance"]) < 1e-5
        distances = [h["distance"] for h in hits]
        assert distances == sorted(distances)
        cos = float(vectors[5] @ vectors[int(hits[1]["id"][2:])])
        assert math.isclose(hits[1]["distance"], 1 - cos, abs_tol=1e-5)

    def test_several_vectors_answer_one_list_each(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        resp = search(vd, name, vectors=[vectors[1].tolist(), vectors[2].tolist()], k=3)
        results = resp.json()["results"]
        assert [row[0]["id"] for row in results] == ["w-1", "w-2"]
        assert all(len(row) == 3 for row in results)

    def test_filter_applies_inside_search_and_still_returns_k(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        # 20 of 60 items are in IL; 10 of those are even: k=10 must still come back whole.
        flt = {"state": "IL", "even": True}
        hits = search(vd, name, vector=vectors[1].tolist(), k=10, filter=flt).json()["results"]
        assert len(hits) == 10
        assert all(h["metadata"] == flt for h in hits)
        assert {h["id"] for h in hits} == {f"w-{n}" for n in range(0, 60, 6)}
        # 40 WI items: more candidates than the exact threshold, so HNSW with hnswlib's filter.
        wide = search(vd, name, vector=vectors[0].tolist(), k=40, filter={"state": "WI"})
        assert {h["id"] for h in wide.json()["results"]} == {f"w-{n}" for n in range(60) if n % 3}

    def test_filter_uses_json_equality(self, vd: httpx.Client, filled: tuple[str, Any]) -> None:
        name, _ = filled
        hits = search(vd, name, vector=[1.0] * DIM, k=10, filter={"even": 1}).json()["results"]
        assert hits == []  # `1` is not `true`

    def test_exclude_ids_never_come_back_and_k_is_kept(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        first = search(vd, name, vector=vectors[9].tolist(), k=10).json()["results"]
        excluded = [h["id"] for h in first]
        hits = search(vd, name, vector=vectors[9].tolist(), k=10, exclude_ids=excluded)
        ids = {h["id"] for h in hits.json()["results"]}
        assert len(ids) == 10 and not ids & set(excluded)

    def test_k_larger_than_the_index_answers_everything(
        self, vd: httpx.Client, filled: tuple[str, Any]
    ) -> None:
        name, _ = filled
        assert len(search(vd, name, vector=[1.0] * DIM, k=MAX_K).json()["results"]) == 60

    def test_empty_index_answers_no_hits(self, vd: httpx.Client) -> None:
        name = index_name()
        create(vd, name)
        assert search(vd, name, vector=[1.0] * DIM, k=3).json() == {"results": []}
        assert search(vd, name, vectors=[[1.0] * DIM], k=3).json() == {"results": [[]]}

    def test_ef_per_query(self, vd: httpx.Client, filled: tuple[str, np.ndarray]) -> None:
        name, vectors = filled
        for ef in (1, 10, 500):
            hits = search(vd, name, vector=vectors[3].tolist(), k=4, ef=ef).json()["results"]
            assert len(hits) == 4 and hits[0]["id"] == "w-3"

    def test_l2_and_ip_distances_are_hnswlibs(self, vd: httpx.Client) -> None:
        rows = np.random.default_rng(6).normal(size=(EXACT_THRESHOLD + 10, DIM)).astype(np.float32)
        q = rows[0] + 0.1
        for space in ("l2", "ip"):
            name = index_name(space)
            create(vd, name, space=space)
            add(vd, name, make_items([f"p{n}" for n in range(len(rows))], rows))
            hits = search(vd, name, vector=q.tolist(), k=3).json()["results"]
            for hit in hits:
                v = rows[int(hit["id"][1:])]
                want = float(((v - q) ** 2).sum()) if space == "l2" else 1 - float(v @ q)
                assert math.isclose(hit["distance"], want, rel_tol=1e-4, abs_tol=1e-4)

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"vector": [1.0] * DIM, "k": 0}, 422, "invalid_request"),
            ({"vector": [1.0] * DIM, "k": -1}, 422, "invalid_request"),
            ({"vector": [1.0] * DIM, "k": MAX_K + 1}, 422, "invalid_request"),
            ({"vector": [1.0] * DIM, "k": 3, "ef": 0}, 422, "invalid_request"),
            ({"k": 3}, 422, "invalid_request"),
            ({"vector": [1.0] * DIM, "vectors": [[1.0] * DIM], "k": 3}, 422, "invalid_request"),
            ({"vectors": [], "k": 3}, 422, "invalid_request"),
            ({"vector": [1.0] * (DIM + 1), "k": 3}, 400, "invalid_input"),
            ({"vectors": [[1.0] * DIM, [1.0] * 2], "k": 3}, 400, "invalid_input"),
            ({"vector": [0.0] * DIM, "k": 3}, 400, "invalid_input"),
            ({"vector": [1.0] * DIM, "k": 3, "filter": [1]}, 422, "invalid_request"),
        ],
    )
    def test_bad_queries_are_refused(
        self,
        vd: httpx.Client,
        filled: tuple[str, Any],
        body: dict[str, Any],
        status: int,
        code: str,
    ) -> None:
        name, _ = filled
        assert_envelope(search(vd, name, **body), status, code)

    def test_unknown_index_is_404(self, vd: httpx.Client) -> None:
        assert_envelope(search(vd, index_name(), vector=[1.0] * DIM, k=1), 404, "not_found")


class TestMultiIndexSearch:
    """`POST /v1/vectors/search`: several searches, each on its own index, in one request."""

    def test_answers_what_each_per_index_search_answers(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        other = index_name()
        assert create(vd, other).status_code == 201
        assert add(vd, other, make_items(["x", "y"], vectors[:2])).is_success
        one = {"index": name, "vector": vectors[7].tolist(), "k": 4, "filter": {"even": False}}
        two = {"index": other, "vector": vectors[1].tolist(), "k": 1, "exclude_ids": ["x"]}
        resp = vd.post("/v1/vectors/search", json={"searches": [one, two]})
        assert resp.status_code == 200, resp.text
        first, second = resp.json()["results"]
        expected = search(vd, name, vector=one["vector"], k=4, filter={"even": False})
        assert first == expected.json()["results"]
        assert [h["id"] for h in second] == ["y"]

    def test_missing_ok_answers_no_hits_for_an_absent_index(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        searches = [
            {"index": name, "vector": vectors[0].tolist(), "k": 2},
            {"index": index_name(), "vector": vectors[0].tolist(), "k": 2, "missing_ok": True},
        ]
        resp = vd.post("/v1/vectors/search", json={"searches": searches})
        assert resp.status_code == 200, resp.text
        first, second = resp.json()["results"]
        assert first[0]["id"] == "w-0" and second == []

    def test_an_unknown_index_without_missing_ok_is_404(
        self, vd: httpx.Client, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        missing = index_name()
        searches = [
            {"index": name, "vector": vectors[0].tolist(), "k": 2},
            {"index": missing, "vector": vectors[0].tolist(), "k": 2},
        ]
        body = assert_envelope(
            vd.post("/v1/vectors/search", json={"searches": searches}), 404, "not_found"
        )
        assert missing in str(body)

    @pytest.mark.parametrize(
        ("searches", "status", "code"),
        [
            ([], 422, "invalid_request"),
            ([{"index": "a", "vector": [1.0] * DIM, "k": 1}] * 17, 422, "invalid_request"),
            ([{"vector": [1.0] * DIM, "k": 1}], 422, "invalid_request"),
            ([{"index": "a", "vectors": [[1.0] * DIM], "k": 1}], 422, "invalid_request"),
            (
                [{"index": "Bad Name!", "vector": [1.0] * DIM, "missing_ok": True}],
                400,
                "invalid_input",
            ),
            ("FILLED", 400, "invalid_input"),
        ],
    )
    def test_bad_requests_are_refused(
        self,
        vd: httpx.Client,
        filled: tuple[str, Any],
        searches: Any,
        status: int,
        code: str,
    ) -> None:
        name, _ = filled
        if searches == "FILLED":  # wrong dimension on a real index
            searches = [{"index": name, "vector": [1.0] * (DIM + 1), "k": 1}]
        resp = vd.post("/v1/vectors/search", json={"searches": searches})
        assert_envelope(resp, status, code)

    def test_reachable_through_the_gateway(
        self, stack: LiveStack, filled: tuple[str, np.ndarray]
    ) -> None:
        name, vectors = filled
        body = {"searches": [{"index": name, "vector": vectors[3].tolist(), "k": 1}]}
        resp = httpx.post(stack.url("gateway") + "/v1/vectors/search", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["results"][0][0]["id"] == "w-3"


class TestVectorClient:
    async def test_typed_client_round_trip(self, stack: LiveStack) -> None:
        name = index_name()
        rows = unit_rows(np.random.default_rng(8), 4, DIM)
        async with HttpClient() as http:
            client = VectorClient(http.client_for("vectord", stack.url("vectord")))
            info = await client.create_index(name, DIM, "cosine")
            assert info.count == 0
            assert (await client.create_index(name, DIM)).name == name
            added = await client.add(name, make_items(["a", "b", "c", "d"], rows))
            assert added.added == 4
            hits = await client.search(name, rows[2], k=2, exclude_ids=["a"])
            assert hits[0].id == "c"
            assert hits[0] == Hit("c", hits[0].distance, {"n": 2})
            assert hits[0].distance == pytest.approx(0.0, abs=1e-6)
            many = await client.search_many(name, [rows[0].tolist(), rows[1].tolist()], k=1)
            assert [row[0].id for row in many] == ["a", "b"]
            both = await client.search_indexes(
                [
                    IndexQuery(index=name, vector=rows[3], k=1),
                    IndexQuery(index="absent", vector=rows[3].tolist(), missing_ok=True),
                ]
            )
            assert [[h.id for h in row] for row in both] == [["d"], []]
            assert (await client.get_item(name, "d")).metadata == {"n": 3}
            gone = await client.delete(name, ["d", "zz"])
            assert (gone.deleted, gone.not_found) == (["d"], ["zz"])
            assert name in {i.name for i in (await client.list_indexes()).indexes}
            with pytest.raises(NotFound):
                await client.get_item(name, "d")
            await client.delete_index(name)
            with pytest.raises(NotFound):
                await client.get_index(name)
