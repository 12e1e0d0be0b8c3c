"""Playbook recordings through the gateway: record, get, list, delete, their 4xx paths, and the
events matrixd reports to observerd (SPEC §5 matrixd, issue 5)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from lakehouse_common.contracts.matrix import playbook_id
from lakehouse_common.contracts.vectors import VectorClient
from lakehouse_common.http import HttpClient
from lakehouse_common.tracing import TRACE_HEADER
from services.matrixd.playbooks import PlaybookStore
from tests.support.envelope import assert_envelope
from tests.support.matrix import CNC, FORKLIFT, FORKLIFT_QUERY, by_id, record, search
from tests.support.stack import LiveStack

RECORD = "/v1/matrix/playbooks/record"


def record_body(index: str, **fields: Any) -> dict[str, Any]:
    return {
        "query_text": FORKLIFT_QUERY,
        "role": FORKLIFT,
        "answer_id": "w-1",
        "score": 1.0,
        "index": index,
        **fields,
    }


def observations(gw: httpx.Client, stream: str, trace_id: str) -> list[dict[str, Any]]:
    """The records of `stream` carrying `trace_id`, waiting briefly for the reporter to ship
    them (reporting is fire-and-forget)."""
    deadline = time.monotonic() + 10
    while True:
        head = gw.get(f"/v1/observations/{stream}", params={"limit": 1})
        since = max(0, head.json()["total"] - 1000) if head.status_code == 200 else 0
        resp = gw.get(f"/v1/observations/{stream}", params={"since": since, "limit": 1000})
        if resp.status_code == 200:
            page = resp.json()
            found = [r for r in page["records"] if r["trace_id"] == trace_id]
            if found or time.monotonic() > deadline:
                return found
        elif time.monotonic() > deadline:
            raise AssertionError(resp.text)
        time.sleep(0.1)


class TestRecord:
    def test_id_is_deterministic_from_normalised_query_role_answer_and_index(
        self, gw: httpx.Client, index: str
    ) -> None:
        first = record(gw, index, FORKLIFT_QUERY, FORKLIFT, "w-1", 0.5)
        again = record(
            gw, index, "  need 3 FORKLIFT operators in aurora il", "forklift  operator", "w-1", 0.9
        )
        assert re.fullmatch(r"pb-[0-9a-f]{16}", first["playbook_id"])
        assert again["playbook_id"] == first["playbook_id"]
        assert first["playbook_id"] == playbook_id(FORKLIFT_QUERY, FORKLIFT, "w-1", index)
        assert (first["updated"], again["updated"]) == (False, True)
        other = record(gw, index, FORKLIFT_QUERY, FORKLIFT, "w-2", 0.5)
        assert other["playbook_id"] != first["playbook_id"]

    def test_get_answers_the_stored_record(self, gw: httpx.Client, index: str) -> None:
        resp = gw.post(RECORD, json=record_body(index, role=" Forklift  Operator ", score=0.4))
        assert resp.status_code == 200, resp.text
        pid = resp.json()["playbook_id"]
        got = gw.get(f"/v1/matrix/playbooks/{pid}")
        assert got.status_code == 200, got.text
        playbook = got.json()
        assert playbook["playbook_id"] == pid
        assert playbook["query_text"] == FORKLIFT_QUERY
        assert playbook["role"] == " Forklift  Operator "
        assert playbook["role_norm"] == "forklift operator"
        assert (playbook["answer_id"], playbook["index"]) == ("w-1", index)
        assert playbook["score"] == 0.4
        assert playbook["recorded_at"]
        assert playbook["trace_id"] == resp.headers[TRACE_HEADER]

    def test_list_filters_by_normalised_role_and_index_newest_first(
        self, gw: httpx.Client, index: str
    ) -> None:
        a = record(gw, index, FORKLIFT_QUERY, FORKLIFT, "w-1", 1.0)["playbook_id"]
        b = record(gw, index, FORKLIFT_QUERY, FORKLIFT, "w-2", 1.0)["playbook_id"]
        c = record(gw, index, FORKLIFT_QUERY, CNC, "w-3", 1.0)["playbook_id"]
        resp = gw.get("/v1/matrix/playbooks", params={"role": "FORKLIFT operator", "index": index})
        assert resp.status_code == 200, resp.text
        listed = resp.json()
        assert [p["playbook_id"] for p in listed["playbooks"]] == [b, a]
        assert (listed["count"], listed["truncated"]) == (2, False)
        cnc = gw.get("/v1/matrix/playbooks", params={"role": CNC, "index": index}).json()
        assert [p["playbook_id"] for p in cnc["playbooks"]] == [c]
        every = gw.get("/v1/matrix/playbooks", params={"index": index}).json()
        assert {p["playbook_id"] for p in every["playbooks"]} == {a, b, c}
        one = gw.get("/v1/matrix/playbooks", params={"index": index, "limit": 1}).json()
        assert [p["playbook_id"] for p in one["playbooks"]] == [c]
        assert one["truncated"] is True

    async def test_list_reads_every_page_of_the_item_listing(
        self, stack: LiveStack, gw: httpx.Client, index: str
    ) -> None:
        """Newest first holds across pages: a store reading one recording per page answers what
        matrixd answers (every match fits in its 1000-item pages)."""
        for n in range(1, 6):
            record(gw, index, FORKLIFT_QUERY, FORKLIFT, f"w-{n}", n / 10)
        expected = gw.get("/v1/matrix/playbooks", params={"index": index}).json()
        async with HttpClient() as http:
            vectors = VectorClient(http.client_for("vectord", stack.url("vectord")))
            store = PlaybookStore(
                vectors, stack.settings.matrix.playbook_index, fanout=1, page_size=1
            )
            listed, truncated = await store.list(role=FORKLIFT, index=index, limit=4)
        assert [p.playbook_id for p in listed] == [
            p["playbook_id"] for p in expected["playbooks"][:4]
        ]
        assert len(expected["playbooks"]) == 5 and truncated is True

    def test_delete_stops_the_boost_at_once(self, gw: httpx.Client, index: str) -> None:
        top = search(gw, index, FORKLIFT_QUERY)["results"][0]
        pid = record(gw, index, FORKLIFT_QUERY, FORKLIFT, top["id"], 1.0)["playbook_id"]
        warm = {"query_role": FORKLIFT, "use_playbook": True}
        assert by_id(search(gw, index, FORKLIFT_QUERY, **warm)["results"])[top["id"]]["boosted"]

        resp = gw.delete(f"/v1/matrix/playbooks/{pid}")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"playbook_id": pid, "deleted": True}
        after = search(gw, index, FORKLIFT_QUERY, **warm)
        assert after["results"][0] == {**top, "rank": 0}
        assert after["boosted"] == 0
        assert_envelope(gw.get(f"/v1/matrix/playbooks/{pid}"), 404, "not_found")
        assert_envelope(gw.delete(f"/v1/matrix/playbooks/{pid}"), 404, "not_found")


class TestRecordErrors:
    def test_answer_not_in_the_index_is_404(self, gw: httpx.Client, index: str) -> None:
        resp = gw.post(RECORD, json=record_body(index, answer_id="w-nosuch"))
        body = assert_envelope(resp, 404, "not_found")
        assert "w-nosuch" in body["error"]["message"]

    def test_unknown_index_is_404(self, gw: httpx.Client) -> None:
        body = assert_envelope(gw.post(RECORD, json=record_body("nosuch")), 404, "not_found")
        assert "nosuch" in body["error"]["message"]

    def test_score_outside_zero_one_is_422(self, gw: httpx.Client, index: str) -> None:
        for score in (1.5, -0.1, "high", None):
            resp = gw.post(RECORD, json=record_body(index, score=score))
            assert_envelope(resp, 422, "invalid_request")
        resp = gw.post(
            RECORD,
            content=b'{"query_text":"q","role":"r","answer_id":"w-1","score":NaN}',
            headers={"content-type": "application/json"},
        )
        assert_envelope(resp, 422)

    def test_blank_or_missing_fields_are_422(self, gw: httpx.Client, index: str) -> None:
        for fields in ({"query_text": ""}, {"query_text": "  "}, {"role": " "}, {"answer_id": ""}):
            assert_envelope(gw.post(RECORD, json=record_body(index, **fields)), 422)
        body = record_body(index)
        del body["score"]
        assert_envelope(gw.post(RECORD, json=body), 422)
        assert_envelope(gw.post(RECORD, json=record_body(index, extra=1)), 422)

    def test_nothing_is_written_by_a_refused_record(self, gw: httpx.Client, index: str) -> None:
        gw.post(RECORD, json=record_body(index, score=2.0))
        gw.post(RECORD, json=record_body(index, answer_id="w-nosuch"))
        listed = gw.get("/v1/matrix/playbooks", params={"index": index}).json()
        assert listed["count"] == 0

    def test_unknown_or_malformed_playbook_is_404(self, gw: httpx.Client) -> None:
        for pid in ("pb-0000000000000000", "pb-xyz", "record", "pb-0000000000000000%0A"):
            assert_envelope(gw.get(f"/v1/matrix/playbooks/{pid}"), 404, "not_found")
            assert_envelope(gw.delete(f"/v1/matrix/playbooks/{pid}"), 404, "not_found")

    def test_bad_list_limit_is_422(self, gw: httpx.Client) -> None:
        for limit in ("0", "1001", "many"):
            resp = gw.get("/v1/matrix/playbooks", params={"limit": limit})
            assert_envelope(resp, 422, "invalid_request")


class TestReporting:
    def test_searches_and_records_are_reported_to_observerd(
        self, gw: httpx.Client, index: str
    ) -> None:
        rec = gw.post(RECORD, json=record_body(index))
        assert rec.status_code == 200, rec.text
        found = observations(gw, "playbook_records", rec.headers[TRACE_HEADER])
        assert len(found) == 1
        assert found[0]["daemon"] == "matrixd"
        event = found[0]["event"]
        assert event["playbook_id"] == rec.json()["playbook_id"]
        assert (event["answer_id"], event["index"], event["score"]) == ("w-1", index, 1.0)

        body = {"query_text": FORKLIFT_QUERY, "index": index, "k": 3}
        body |= {"query_role": FORKLIFT, "use_playbook": True}
        resp = gw.post("/v1/matrix/search", json=body)
        assert resp.status_code == 200, resp.text
        found = observations(gw, "search_runs", resp.headers[TRACE_HEADER])
        assert len(found) == 1
        event = found[0]["event"]
        assert event["endpoint"] == "search"
        assert (event["query_text"], event["query_role"], event["k"]) == (
            FORKLIFT_QUERY,
            FORKLIFT,
            3,
        )
        assert [r["id"] for r in event["results"]] == [r["id"] for r in resp.json()["results"]]
        assert event["playbooks_applied"] == [rec.json()["playbook_id"]]
