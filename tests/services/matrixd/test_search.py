"""`POST /v1/matrix/search` through the gateway on a real stack: the exact playbook math, the
injection of approved answers, the role gate, `exclude_ids` and `filters`, and the 4xx paths
(SPEC §5 matrixd, issue 5)."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from tests.support.envelope import assert_envelope
from tests.support.matrix import (
    CNC,
    CNC_QUERY,
    FORKLIFT,
    FORKLIFT_QUERY,
    Roster,
    by_id,
    embed,
    record,
    search,
)
from tests.support.metrics import metric
from tests.support.stack import LiveStack

K = 5
PAYROLL_QUERY = "Quarterly payroll tax filing for the accounting department"


def cold(gw: httpx.Client, index: str, query: str = FORKLIFT_QUERY, **kw: Any) -> dict[str, Any]:
    return search(gw, index, query, **{"k": K, **kw})


def warm(
    gw: httpx.Client, index: str, query: str = FORKLIFT_QUERY, role: str = FORKLIFT, **kw: Any
) -> dict[str, Any]:
    return search(gw, index, query, k=K, query_role=role, use_playbook=True, **kw)


def organic_view(answer: dict[str, Any]) -> list[tuple[str, float]]:
    return [(r["id"], r["distance"]) for r in answer["results"]]


def true_distance(gw: httpx.Client, query: str, index: str, worker_id: str) -> float:
    """1 − cos between the query's embedding and the worker's stored vector, in float64."""
    q = np.asarray(embed(gw, query)[0], dtype=np.float64)
    item = gw.get(f"/v1/vectors/indexes/{index}/items/{worker_id}").json()
    v = np.asarray(item["vector"], dtype=np.float64)
    return float(1.0 - (q / np.linalg.norm(q)) @ (v / np.linalg.norm(v)))


class TestOrganic:
    def test_cold_search_answers_ranked_forklift_operators(
        self, gw: httpx.Client, index: str
    ) -> None:
        answer = cold(gw, index)
        results = answer["results"]
        assert [r["rank"] for r in results] == list(range(K))
        distances = [r["distance"] for r in results]
        assert distances == sorted(distances)
        assert results[0]["metadata"]["role"] == FORKLIFT
        assert not any(r["boosted"] or r["injected"] for r in results)
        assert answer["boosted"] == answer["injected"] == 0

    def test_organic_retrieval_is_not_role_filtered(self, gw: httpx.Client, index: str) -> None:
        plain = cold(gw, index)
        as_nurse = warm(gw, index, role="Registered Nurse")
        assert organic_view(as_nurse) == organic_view(plain)
        assert as_nurse["results"][0]["metadata"]["role"] == FORKLIFT

    def test_filters_apply_inside_the_search(self, gw: httpx.Client, index: str) -> None:
        results = cold(gw, index, filters={"state": "TX", "available": True})["results"]
        assert results
        assert all(
            r["metadata"]["state"] == "TX" and r["metadata"]["available"] is True for r in results
        )

    def test_excluded_ids_never_come_back(self, gw: httpx.Client, index: str) -> None:
        first = [r["id"] for r in cold(gw, index)["results"]]
        swapped = cold(gw, index, exclude_ids=first)["results"]
        assert len(swapped) == K
        assert not {r["id"] for r in swapped} & set(first)


class TestBoost:
    def test_score_one_halves_the_distance_exactly(self, gw: httpx.Client, index: str) -> None:
        before = cold(gw, index)["results"]
        top = before[0]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, top["id"], 1.0)

        after = warm(gw, index)
        boosted = by_id(after["results"])[top["id"]]
        assert abs(boosted["distance"] - top["distance"] * 0.5) < 1e-6
        assert boosted["boosted"] and not boosted["injected"]
        assert (after["boosted"], after["injected"]) == (1, 0)
        # Nothing else moved.
        others = {r["id"]: r["distance"] for r in before[1:]}
        assert {r["id"]: r["distance"] for r in after["results"][1:]} == others

    def test_score_point_four_multiplies_by_point_eight(self, gw: httpx.Client, index: str) -> None:
        before = cold(gw, index)["results"]
        third = before[2]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, third["id"], 0.4)
        boosted = by_id(warm(gw, index)["results"])[third["id"]]
        assert abs(boosted["distance"] - third["distance"] * 0.8) < 1e-6
        assert boosted["boosted"]

    def test_boost_reorders_the_results(self, gw: httpx.Client, index: str) -> None:
        before = cold(gw, index)["results"]
        last = before[-1]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, last["id"], 1.0)
        results = warm(gw, index)["results"]
        expected = sorted(
            [(r["distance"], r["id"]) for r in before[:-1]] + [(last["distance"] * 0.5, last["id"])]
        )
        assert [r["id"] for r in results] == [i for _, i in expected]
        assert [r["rank"] for r in results] == list(range(K))

    def test_rerecording_updates_the_score(self, gw: httpx.Client, index: str) -> None:
        top = cold(gw, index)["results"][0]
        first = record(gw, index, FORKLIFT_QUERY, FORKLIFT, top["id"], 1.0)
        again = record(gw, index, FORKLIFT_QUERY, FORKLIFT, top["id"], 0.4)
        assert again["playbook_id"] == first["playbook_id"]
        assert (first["updated"], again["updated"]) == (False, True)
        boosted = by_id(warm(gw, index)["results"])[top["id"]]
        assert abs(boosted["distance"] - top["distance"] * 0.8) < 1e-6

    def test_strongest_recording_per_answer_applies_once(
        self, gw: httpx.Client, index: str
    ) -> None:
        top = cold(gw, index)["results"][0]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, top["id"], 0.4)
        record(gw, index, "need 2 forklift operators in Aurora, IL", FORKLIFT, top["id"], 1.0)
        record(gw, index, "Need 3 Forklift Operators in Aurora IL asap", FORKLIFT, top["id"], 0.2)
        answer = warm(gw, index)
        boosted = by_id(answer["results"])[top["id"]]
        assert abs(boosted["distance"] - top["distance"] * 0.5) < 1e-6
        assert answer["boosted"] == 1

    def test_recording_on_a_far_query_does_not_apply(self, gw: httpx.Client, index: str) -> None:
        before = cold(gw, index)
        record(gw, index, PAYROLL_QUERY, FORKLIFT, before["results"][0]["id"], 1.0)
        after = warm(gw, index)
        assert organic_view(after) == organic_view(before)
        assert after["boosted"] == after["injected"] == 0

    def test_use_playbook_false_applies_none(self, gw: httpx.Client, index: str) -> None:
        before = cold(gw, index)
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, before["results"][0]["id"], 1.0)
        after = cold(gw, index, query_role=FORKLIFT, use_playbook=False)
        assert organic_view(after) == organic_view(before)
        assert after["boosted"] == 0

    def test_no_query_role_uses_no_playbooks(self, gw: httpx.Client, index: str) -> None:
        before = cold(gw, index)
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, before["results"][0]["id"], 1.0)
        for role in ({}, {"query_role": None}, {"query_role": "   "}):
            after = cold(gw, index, use_playbook=True, **role)
            assert organic_view(after) == organic_view(before)
            assert after["boosted"] == after["injected"] == 0


class TestInjection:
    def test_approved_answer_outside_top_k_is_injected_with_its_true_distance(
        self, gw: httpx.Client, index: str, roster: Roster
    ) -> None:
        before = cold(gw, index)["results"]
        nurse = roster.ids_where(role="Registered Nurse", city="Phoenix")[0]
        assert nurse not in {r["id"] for r in before}
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, nurse, 1.0)

        after = warm(gw, index)
        results = after["results"]
        assert len(results) == K
        injected = by_id(results)[nurse]
        assert injected["injected"] and injected["boosted"]
        expected = true_distance(gw, FORKLIFT_QUERY, index, nurse) * 0.5
        assert abs(injected["distance"] - expected) < 1e-6
        assert injected["metadata"]["role"] == "Registered Nurse"
        # Never cut although still the worst: it displaced the worst organic result.
        assert results[-1]["id"] == nurse
        assert [r["id"] for r in results[:-1]] == [r["id"] for r in before[:-1]]
        assert (after["boosted"], after["injected"]) == (1, 1)

    def test_injected_answer_outranks_organic_ones_when_close_enough(
        self, gw: httpx.Client, index: str, roster: Roster
    ) -> None:
        before = cold(gw, index, k=20)["results"]
        outside = before[K + 1]  # the 7th nearest: outside the top 5, but close
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, outside["id"], 1.0)
        results = warm(gw, index)["results"]
        injected = by_id(results)[outside["id"]]
        assert injected["injected"] and injected["boosted"]
        assert abs(injected["distance"] - outside["distance"] * 0.5) < 1e-6
        assert injected["rank"] < K - 1
        assert len(results) == K

    def test_excluded_ids_are_never_injected_or_boosted(
        self, gw: httpx.Client, index: str, roster: Roster
    ) -> None:
        before = cold(gw, index)["results"]
        nurse = roster.ids_where(role="Registered Nurse", city="Phoenix")[0]
        top = before[0]["id"]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, nurse, 1.0)
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, top, 1.0)
        after = warm(gw, index, exclude_ids=[nurse, top])
        ids = {r["id"] for r in after["results"]}
        assert nurse not in ids and top not in ids
        assert len(ids) == K
        assert after["boosted"] == after["injected"] == 0

    def test_injected_answers_respect_filters(
        self, gw: httpx.Client, index: str, roster: Roster
    ) -> None:
        nurse_az = roster.ids_where(role="Registered Nurse", city="Phoenix")[0]
        nurse_il = roster.ids_where(role="Registered Nurse", city="Joliet")[0]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, nurse_az, 1.0)
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, nurse_il, 1.0)
        after = warm(gw, index, filters={"state": "IL"})
        results = by_id(after["results"])
        assert nurse_az not in results
        assert results[nurse_il]["boosted"]
        assert all(r["metadata"]["state"] == "IL" for r in after["results"])


class TestRoleGate:
    def test_forklift_recording_never_affects_a_cnc_query(
        self, gw: httpx.Client, index: str
    ) -> None:
        forklift_top = cold(gw, index)["results"][0]["id"]
        record(gw, index, FORKLIFT_QUERY, FORKLIFT, forklift_top, 1.0)
        # The same query text, asked for another role: the gate keeps the recording out.
        same_text = warm(gw, index, role=CNC)
        assert organic_view(same_text) == organic_view(cold(gw, index))
        assert same_text["boosted"] == same_text["injected"] == 0
        cnc = warm(gw, index, CNC_QUERY, role=CNC)
        assert organic_view(cnc) == organic_view(cold(gw, index, CNC_QUERY))
        assert cnc["boosted"] == cnc["injected"] == 0

    def test_cnc_recording_never_affects_a_forklift_query(
        self, gw: httpx.Client, index: str, roster: Roster
    ) -> None:
        welder = roster.ids_where(role="Welder", city="Aurora", state="IL")[0]
        record(gw, index, FORKLIFT_QUERY, CNC, welder, 1.0)
        gated = warm(gw, index, role=FORKLIFT)
        assert organic_view(gated) == organic_view(cold(gw, index))
        assert gated["boosted"] == gated["injected"] == 0
        # The recording does apply to its own role.
        own = warm(gw, index, role=CNC)
        assert by_id(own["results"])[welder]["boosted"]

    def test_roles_compare_case_and_whitespace_insensitively(
        self, gw: httpx.Client, index: str
    ) -> None:
        top = cold(gw, index)["results"][0]
        record(gw, index, FORKLIFT_QUERY, "  forklift   OPERATOR ", top["id"], 1.0)
        boosted = by_id(warm(gw, index, role="Forklift Operator")["results"])[top["id"]]
        assert abs(boosted["distance"] - top["distance"] * 0.5) < 1e-6


class TestSearchErrors:
    def test_k_outside_bounds_is_422(self, gw: httpx.Client, index: str) -> None:
        for k in (0, -1, 101):
            resp = gw.post("/v1/matrix/search", json={"query_text": "x", "index": index, "k": k})
            assert_envelope(resp, 422, "invalid_request")

    def test_empty_query_text_is_422(self, gw: httpx.Client, index: str) -> None:
        for text in ("", "   \n"):
            resp = gw.post("/v1/matrix/search", json={"query_text": text, "index": index})
            assert_envelope(resp, 422, "invalid_request")
        assert_envelope(gw.post("/v1/matrix/search", json={"index": index}), 422)

    def test_malformed_fields_are_422(self, gw: httpx.Client, index: str) -> None:
        for extra in (
            {"filters": ["state"]},
            {"exclude_ids": "w-1"},
            {"use_playbook": "maybe"},
            {"query_text": 7},
            {"nope": 1},
        ):
            body = {"query_text": "Forklift", "index": index, **extra}
            assert_envelope(gw.post("/v1/matrix/search", json=body), 422, "invalid_request")

    def test_unknown_index_is_404(self, gw: httpx.Client) -> None:
        resp = gw.post("/v1/matrix/search", json={"query_text": "Forklift", "index": "nosuch"})
        body = assert_envelope(resp, 404, "not_found")
        assert "nosuch" in body["error"]["message"]

    def test_not_json_is_422(self, gw: httpx.Client) -> None:
        resp = gw.post(
            "/v1/matrix/search", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert_envelope(resp, 422)


class TestQueryCache:
    def test_a_repeated_query_skips_embedd_and_answers_the_same(
        self, gw: httpx.Client, stack: LiveStack, index: str
    ) -> None:
        query = "Need 2 Welders in Joliet IL for the night shift, query-cache test"
        with (
            httpx.Client(base_url=stack.url("matrixd")) as matrixd,
            httpx.Client(base_url=stack.url("embedd")) as embedd,
        ):

            def counts() -> tuple[float, ...]:
                return (
                    metric(matrixd, "lakehouse_matrix_query_cache_total", result="hit"),
                    metric(matrixd, "lakehouse_matrix_query_cache_total", result="miss"),
                    metric(embedd, "lakehouse_embed_cache_hits_total", model="all-MiniLM-L6-v2")
                    + metric(
                        embedd, "lakehouse_embed_cache_misses_total", model="all-MiniLM-L6-v2"
                    ),
                )

            hits, misses, embedded = counts()
            first = cold(gw, index, query)
            after_first = counts()
            assert after_first == (hits, misses + 1, embedded + 1)
            second = cold(gw, index, query)
            assert counts() == (hits + 1, misses + 1, embedded + 1)  # embedd was not asked
        assert organic_view(second) == organic_view(first)
