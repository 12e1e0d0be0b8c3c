"""Retrieval end to end through the gateway: ingest demo workers, index them with an ingestd job
(embedd's local model → vectord), then search with the embedding of "Forklift Operator in
Aurora, IL" and get forklift operators, Illinois first (issue 4) — with the demo template, which
spells the state out: with the code alone MiniLM ranks Aurora CO forklift operators first."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lakehouse_common.cli.ingest import DEFAULT_TEMPLATE
from lakehouse_common.ops.roster import write_roster
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack

STACK = ("storaged", "catalogd", "ingestd", "queryd", "embedd", "vectord", "gateway")
TEMPLATE = DEFAULT_TEMPLATE
# Issue 4 asks for 10k workers (LAKEHOUSE_RETRIEVAL_ROWS=10000; verified on this machine). The
# default, 1,400, keeps CI's embedding time small and still holds every Aurora forklift operator
# of the first 2,000 rows of seed 11 (w-542, w-639 and w-801 in Aurora CO; w-986 and w-1326 in
# Aurora IL; the roster is prefix-stable), so "Illinois first" is a real race between the two
# Auroras (issue 15 cut the default from 2,000).
ROWS = int(os.environ.get("LAKEHOUSE_RETRIEVAL_ROWS", "1400"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("retrieval"))
    with live.running(*STACK, timeout_s=180):
        yield live


@pytest.fixture(scope="module")
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("gateway"), timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def indexed(gw: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("roster") / "workers.parquet"
    write_roster(path, ROWS, seed=11)
    with path.open("rb") as fh:
        resp = gw.post(
            "/v1/ingest/workers",
            content=fh,
            headers={"content-type": "application/vnd.apache.parquet"},
        )
    assert resp.status_code == 201, resp.text
    job = start_job(gw)
    assert job["state"] == "succeeded", job["error"]
    return job


def start_job(gw: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {
        "index": "workers",
        "text_template": TEMPLATE,
        "id_column": "id",
        "metadata_columns": ["role", "city", "state", "available"],
        **overrides,
    }
    resp = gw.post("/v1/ingest/workers/index", json=body)
    assert resp.status_code == 202, resp.text
    job: dict[str, Any] = resp.json()
    deadline = time.monotonic() + 600
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = gw.get(f"/v1/ingest/jobs/{job['id']}").json()
    return job


def search(gw: httpx.Client, text: str, k: int = 10) -> list[dict[str, Any]]:
    vector = gw.post("/v1/embed", json={"texts": [text]}).json()["vectors"][0]
    resp = gw.post("/v1/vectors/indexes/workers/search", json={"vector": vector, "k": k})
    assert resp.status_code == 200, resp.text
    results: list[dict[str, Any]] = resp.json()["results"]
    return results


@pytest.mark.slow
def test_job_indexes_every_row(gw: httpx.Client, indexed: dict[str, Any]) -> None:
    assert indexed["done"] == indexed["total"] == ROWS
    info = gw.get("/v1/vectors/indexes/workers").json()
    assert info["count"] == ROWS
    assert info["dim"] == 384


@pytest.mark.slow
def test_forklift_query_finds_forklift_operators(gw: httpx.Client, indexed: dict[str, Any]) -> None:
    results = search(gw, "Forklift Operator in Aurora, IL", k=10)
    roles = [r["metadata"]["role"] for r in results]
    assert roles.count("Forklift Operator") >= 8, roles
    assert all(set(r["metadata"]) == {"role", "city", "state", "available"} for r in results)
    top = results[0]["metadata"]
    assert (top["role"], top["city"], top["state"]) == ("Forklift Operator", "Aurora", "IL"), top


@pytest.mark.slow
def test_rerunning_the_job_is_idempotent(gw: httpx.Client, indexed: dict[str, Any]) -> None:
    before = search(gw, "Welder in Houston, TX", k=5)
    again = start_job(gw)
    assert again["state"] == "succeeded"
    assert gw.get("/v1/vectors/indexes/workers").json()["count"] == ROWS
    assert search(gw, "Welder in Houston, TX", k=5) == before


class TestIndexJobErrors:
    def test_unknown_template_column_is_422(
        self, gw: httpx.Client, indexed: dict[str, Any]
    ) -> None:
        resp = gw.post(
            "/v1/ingest/workers/index", json={"index": "w2", "text_template": "{nope} {role}"}
        )
        assert resp.status_code == 422
        assert "nope" in resp.json()["error"]["message"]

    def test_bad_template_is_422(self, gw: httpx.Client, indexed: dict[str, Any]) -> None:
        resp = gw.post("/v1/ingest/workers/index", json={"index": "w2", "text_template": "{role"})
        assert resp.status_code == 422

    def test_unknown_metadata_column_is_422(
        self, gw: httpx.Client, indexed: dict[str, Any]
    ) -> None:
        body = {"index": "w2", "text_template": "{role}", "metadata_columns": ["salary"]}
        assert gw.post("/v1/ingest/workers/index", json=body).status_code == 422

    def test_bad_index_name_is_422(self, gw: httpx.Client, indexed: dict[str, Any]) -> None:
        body = {"index": "Bad Name", "text_template": "{role}"}
        assert gw.post("/v1/ingest/workers/index", json=body).status_code == 422

    def test_unknown_dataset_is_404(self, gw: httpx.Client) -> None:
        body = {"index": "w2", "text_template": "{role}"}
        assert gw.post("/v1/ingest/nosuch/index", json=body).status_code == 404

    def test_unknown_version_is_404(self, gw: httpx.Client, indexed: dict[str, Any]) -> None:
        body = {"index": "w2", "text_template": "{role}", "version": 99}
        assert gw.post("/v1/ingest/workers/index", json=body).status_code == 404

    def test_unknown_job_is_404(self, gw: httpx.Client) -> None:
        resp = gw.get("/v1/ingest/jobs/job-nope")
        assert_envelope(resp, 404, "not_found")
