"""Issue 7's wiring in matrixd: a search through the gateway that returns `w-17` of a governed
dataset leaves a verified audit row for `WORKER-17` carrying that request's trace id, written
before the answer (purpose `matching`)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from lakehouse_common.tracing import TRACE_HEADER, mint_trace_id
from tests.support.matrix import Roster

# matrixd audits searches of the index whose name is a governed dataset's.
GOVERNED = "audited_roster"  # not `workers`: test_retrieve ingests that into the same stack


def audit_rows(gw: httpx.Client, subject_id: str) -> list[dict[str, Any]]:
    resp = gw.get(f"/v1/catalog/subjects/{subject_id}/audit")
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()["rows"]
    return rows


def test_search_returning_w17_leaves_a_verified_row_with_its_trace_id(
    gw: httpx.Client, roster: Roster, index: str
) -> None:
    resp = gw.put(f"/v1/vectors/indexes/{GOVERNED}", json={"dim": 384, "space": "cosine"})
    assert resp.status_code in (200, 201), resp.text
    assert gw.post(f"/v1/vectors/indexes/{GOVERNED}/add", json={"items": roster.items}).is_success
    # A manifest names columns of a catalogued dataset: commit an (empty) version describing it.
    columns = ["id", "first_name", "phone", "role", "city", "state", "available"]
    commit = {
        "version": 1,
        "schema": [{"name": c, "type": "VARCHAR"} for c in columns],
        "files": [],
        "row_count": 0,
    }
    resp = gw.post(f"/v1/catalog/datasets/{GOVERNED}/versions", json=commit)
    assert resp.status_code == 201, resp.text
    manifest = {"dataset": GOVERNED, "row_key": "w-17", "pii_fields": ["first_name", "phone"]}
    assert gw.put("/v1/catalog/subjects/WORKER-17", json=manifest).status_code in (200, 201)

    meta = roster.by_id("w-17")["metadata"]
    body = {
        "query_text": f"{meta['role']} in {meta['city']}, {meta['state']}",
        "index": GOVERNED,
        "k": 3,
    }
    # matrixd caches the governance policy for `audit.policy_refresh_s` (1 s): the manifest
    # just written governs the dataset from the next refresh on.
    deadline = time.monotonic() + 15
    while True:
        trace = mint_trace_id()
        resp = gw.post("/v1/matrix/search", json=body, headers={TRACE_HEADER: trace})
        assert resp.status_code == 200, resp.text
        assert resp.json()["results"][0]["id"] == "w-17"
        ours = [r for r in audit_rows(gw, "WORKER-17") if r["accessor"]["trace_id"] == trace]
        if ours or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(ours) == 1, "no audit row for the search's trace id"
    row = ours[0]
    assert row["accessor"] == {"daemon": "matrixd", "purpose": "matching", "trace_id": trace}
    assert row["fields"] == ["id"]  # who was matched; the metadata holds no PII field
    verified = gw.get("/v1/catalog/subjects/WORKER-17/audit/verify").json()
    assert (
        verified["verified"] is True and verified["tip"] == audit_rows(gw, "WORKER-17")[-1]["hmac"]
    )

    # The same worker found through an index that is not a governed dataset's: no row.
    trace = mint_trace_id()
    other = gw.post(
        "/v1/matrix/search", json={**body, "index": index}, headers={TRACE_HEADER: trace}
    )
    assert other.status_code == 200 and other.json()["results"][0]["id"] == "w-17"
    assert not [r for r in audit_rows(gw, "WORKER-17") if r["accessor"]["trace_id"] == trace]
