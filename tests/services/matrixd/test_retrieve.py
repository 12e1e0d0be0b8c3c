"""`POST /v1/matrix/retrieve` through the gateway: semantic candidates narrowed by a SQL
condition answered by queryd, with full roster rows; the filter cannot leave its WHERE clause
(SPEC §5 matrixd, issue 5). Adds the lake daemons to the package's stack and indexes a small
demo roster with an ingestd job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse_common.ops.roster import ROSTER_SCHEMA, write_roster
from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.matrix import FORKLIFT, FORKLIFT_QUERY, embed
from tests.support.stack import LiveStack

LAKE = ("storaged", "catalogd", "ingestd", "queryd")
ROWS = 300
OSHA = "available AND 'OSHA-10' = ANY(certifications)"
RETRIEVE = "/v1/matrix/retrieve"


@pytest.fixture(scope="module")
def workers(stack: LiveStack, gw: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The `workers` dataset and index (ROWS demo workers); answers the index name."""
    stack.start(*LAKE)
    path: Path = tmp_path_factory.mktemp("roster") / "workers.parquet"
    write_roster(path, ROWS, seed=5)
    with path.open("rb") as fh:
        resp = gw.post(
            "/v1/ingest/workers",
            content=fh,
            headers={"content-type": "application/vnd.apache.parquet"},
        )
    assert resp.status_code == 201, resp.text
    job = {
        "index": "workers",
        "text_template": "{role} in {city}, {state}. Certifications: {certifications}",
        "id_column": "id",
        "metadata_columns": ["role", "city", "state", "available"],
    }
    resp = gw.post("/v1/ingest/workers/index", json=job)
    assert resp.status_code == 202, resp.text
    state = resp.json()
    deadline = time.monotonic() + 300
    while state["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        state = gw.get(f"/v1/ingest/jobs/{state['id']}").json()
    assert state["state"] == "succeeded", state
    return "workers"


def retrieve(gw: httpx.Client, **fields: Any) -> httpx.Response:
    return gw.post(RETRIEVE, json={"query_text": FORKLIFT_QUERY, **fields})


def expected_ids(gw: httpx.Client, k: int, candidates: int, condition: str | None) -> list[str]:
    """The answer computed another way: vectord's top candidates, kept when queryd says their
    row satisfies the condition, in distance order."""
    vector = embed(gw, FORKLIFT_QUERY)[0]
    hits = gw.post(
        "/v1/vectors/indexes/workers/search", json={"vector": vector, "k": candidates}
    ).json()["results"]
    ids = [h["id"] for h in hits]
    sql = "SELECT id FROM workers WHERE list_contains($1, id)"
    if condition:
        sql += f" AND ({condition})"
    resp = gw.post("/v1/query", json={"sql": sql, "params": [ids]})
    assert resp.status_code == 200, resp.text
    matched = {row[0] for row in resp.json()["rows"]}
    return [i for i in ids if i in matched][:k]


class TestRetrieve:
    def test_sql_filter_narrows_the_semantic_candidates(
        self, gw: httpx.Client, workers: str
    ) -> None:
        resp = retrieve(gw, query_role=FORKLIFT, k=5, sql_filter=OSHA)
        assert resp.status_code == 200, resp.text
        bundle = resp.json()
        results = bundle["results"]
        assert [r["id"] for r in results] == expected_ids(gw, 5, 50, OSHA)
        assert results, "the demo roster has available OSHA-10 forklift operators"
        for n, r in enumerate(results):
            assert r["rank"] == n
            assert set(r["row"]) == set(ROSTER_SCHEMA.names)
            assert r["row"]["id"] == r["id"]
            assert r["row"]["available"] is True
            assert "OSHA-10" in r["row"]["certifications"]
        distances = [r["distance"] for r in results]
        assert distances == sorted(distances)
        assert bundle["query_text"] == FORKLIFT_QUERY
        assert bundle["query_role"] == FORKLIFT
        assert bundle["sql_filter"] == OSHA
        assert bundle["trace_id"] == resp.headers[TRACE_HEADER]
        assert (bundle["index"], bundle["dataset"], bundle["candidates"]) == (
            "workers",
            "workers",
            50,
        )

    def test_without_filter_the_nearest_k_come_with_their_rows(
        self, gw: httpx.Client, workers: str
    ) -> None:
        resp = retrieve(gw, k=7)
        assert resp.status_code == 200, resp.text
        results = resp.json()["results"]
        assert [r["id"] for r in results] == expected_ids(gw, 7, 7, None)
        assert all(r["row"]["id"] == r["id"] for r in results)

    def test_a_filter_nothing_satisfies_answers_no_results(
        self, gw: httpx.Client, workers: str
    ) -> None:
        resp = retrieve(gw, sql_filter="state = 'nowhere'")
        assert resp.status_code == 200, resp.text
        assert resp.json()["results"] == []


class TestRetrieveErrors:
    @pytest.mark.parametrize(
        "sql_filter",
        [
            "available; DROP TABLE workers",
            "available -- and the rest",
            "available) OR (true",
            "available) UNION SELECT * FROM workers WHERE (true",
            "id = $1",
            "available ORDER BY 1",
            "",
        ],
    )
    def test_a_filter_that_could_leave_its_where_clause_is_400(
        self, gw: httpx.Client, workers: str, sql_filter: str
    ) -> None:
        body = assert_envelope(retrieve(gw, sql_filter=sql_filter), 400, "invalid_input")
        assert body["error"]["message"].startswith("sql_filter")

    def test_a_filter_queryd_refuses_is_400(self, gw: httpx.Client, workers: str) -> None:
        for sql_filter in ("no_such_column = 1", "exists(SELECT * FROM read_csv('/etc/passwd'))"):
            assert_envelope(retrieve(gw, sql_filter=sql_filter), 400, "invalid_input")

    def test_bad_k_or_query_is_422(self, gw: httpx.Client, workers: str) -> None:
        for fields in ({"k": 0}, {"k": 101}, {"query_text": " "}, {"sql_filter": 3}):
            assert_envelope(retrieve(gw, **fields), 422, "invalid_request")

    def test_unknown_index_is_404(self, gw: httpx.Client, workers: str) -> None:
        assert_envelope(retrieve(gw, index="nosuch", dataset="workers"), 404, "not_found")

    def test_index_that_is_not_a_dataset_name_needs_dataset(
        self, gw: httpx.Client, workers: str
    ) -> None:
        body = assert_envelope(retrieve(gw, index="t-abc"), 400, "invalid_input")
        assert "dataset" in body["error"]["message"]
        assert_envelope(retrieve(gw, dataset="bad name"), 422, "invalid_request")
