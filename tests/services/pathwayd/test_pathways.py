"""pathwayd against real daemons: embedd (the local model), observerd and the gateway.

One stack for the module (embedd's model loads once). The tests run in file order: the last
class kills pathwayd and then embedd.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack

MAX_K = 10
MAX_LIST = 50

FORKLIFT = "Forklift Operator"
CNC = "CNC Operator"
AURORA = "Need 3 Forklift Operators in Aurora IL"

# (demand_text, role, steps, filled)
HISTORY: list[tuple[str, str, list[str], bool]] = [
    (AURORA, FORKLIFT, ["search", "shortlist", "outreach", "confirm", "fill"], True),
    (
        "Need 2 forklift drivers in Aurora, Illinois",
        FORKLIFT,
        ["search", "outreach", "confirm"],
        False,
    ),
    (
        "Forklift operators for night shift, Aurora IL",
        FORKLIFT,
        ["search", "shortlist", "outreach", "fill"],
        True,
    ),
    ("Need 5 forklift operators in Naperville IL", FORKLIFT, ["search", "outreach"], False),
    # The same words for another role: the role gate keeps it out of forklift advice.
    (AURORA, CNC, ["search", "call", "fill"], True),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("pathwayd"),
        {"pathway": {"max_k": MAX_K, "max_list": MAX_LIST}},
    )
    with live.running("embedd", "observerd", "pathwayd", "gateway", timeout_s=120):
        yield live


@pytest.fixture(scope="module")
def pw(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("pathwayd") as client:
        yield client


def pathway(demand: str, role: str, steps: list[str], filled: bool, **extra: Any) -> dict[str, Any]:
    return {
        "demand_text": demand,
        "role": role,
        "steps": [{"name": s} for s in steps],
        "outcome": {"filled": filled},
        **extra,
    }


@pytest.fixture(scope="module")
def history(pw: httpx.Client) -> list[dict[str, Any]]:
    records = []
    for demand, role, steps, filled in HISTORY:
        resp = pw.post("/v1/pathways", json=pathway(demand, role, steps, filled))
        assert resp.status_code == 201, resp.text
        records.append(resp.json())
    return records


def suggest(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1/pathways/suggest", json=body)


class TestRecord:
    def test_record_then_get(self, pw: httpx.Client) -> None:
        body = pathway(
            "Need 1 welder in Gary IN",
            "Welder",
            ["search", "Outreach "],
            True,
        )
        body["steps"][0]["at"] = "2026-05-02T09:14:03Z"
        body["steps"][0]["detail"] = {"hits": 12}
        body["outcome"].update(count=1, reason="placed")
        resp = pw.post("/v1/pathways", json=body, headers={"X-Lakehouse-Trace-Id": "trace-1"})
        assert resp.status_code == 201, resp.text
        record = resp.json()
        assert record["pathway_id"].startswith("pw-") and len(record["pathway_id"]) == 19
        assert [s["name"] for s in record["steps"]] == ["search", "outreach"]
        assert record["steps"][0]["detail"] == {"hits": 12}
        assert record["outcome"] == {"filled": True, "count": 1, "reason": "placed"}
        assert record["trace_id"] == "trace-1"
        assert pw.get(f"/v1/pathways/{record['pathway_id']}").json() == record

    def test_given_id_retry_is_idempotent_and_other_content_conflicts(
        self, pw: httpx.Client
    ) -> None:
        body = pathway(
            "Need 2 packers in Joliet IL", "Packer", ["search"], False, pathway_id="pw-x1"
        )
        first = pw.post("/v1/pathways", json=body)
        assert first.status_code == 201
        again = pw.post("/v1/pathways", json=body)
        assert (again.status_code, again.json()) == (200, first.json())
        body["outcome"]["filled"] = True
        assert_envelope(pw.post("/v1/pathways", json=body), 409, "conflict")

    def test_unknown_id_is_404(self, pw: httpx.Client) -> None:
        assert_envelope(pw.get("/v1/pathways/pw-0000000000000000"), 404, "not_found")

    @pytest.mark.parametrize(
        "change",
        [
            {"steps": []},
            {"steps": [{"name": "bad name!"}]},
            {"steps": [{"name": "search", "at": "2026-05-02T09:14:03"}]},  # no time zone
            {"steps": [{"name": "search", "extra": 1}]},
            {"steps": ["search"]},
            {"outcome": {}},
            {"outcome": {"filled": "yes"}},
            {"outcome": {"filled": True, "count": -1}},
            {"role": "   "},
            {"demand_text": ""},
            {"demand_text": "x" * 4001},
            {"pathway_id": "has space"},
            {"unknown": 1},
        ],
    )
    def test_malformed_pathway_is_422_and_not_stored(
        self, pw: httpx.Client, change: dict[str, Any]
    ) -> None:
        before = pw.get("/v1/pathways", params={"limit": 0}).json()["total"]
        body = {**pathway("Need 1 driver", "Driver", ["search"], True), **change}
        assert_envelope(pw.post("/v1/pathways", json=body), 422, "invalid_request")
        assert pw.get("/v1/pathways", params={"limit": 0}).json()["total"] == before


class TestList:
    def test_by_role_newest_first_case_and_space_insensitive(
        self, pw: httpx.Client, history: list[dict[str, Any]]
    ) -> None:
        page = pw.get("/v1/pathways", params={"role": "  forklift   OPERATOR "}).json()
        forklift_ids = [r["pathway_id"] for r in history if r["role"] == FORKLIFT]
        assert [p["pathway_id"] for p in page["pathways"]] == forklift_ids[::-1]
        assert page["count"] == page["total"] == 4
        two = pw.get("/v1/pathways", params={"role": FORKLIFT, "limit": 2}).json()
        assert [p["pathway_id"] for p in two["pathways"]] == forklift_ids[::-1][:2]
        assert (two["count"], two["total"]) == (2, 4)

    def test_limit_over_the_maximum_is_400(self, pw: httpx.Client) -> None:
        resp = pw.get("/v1/pathways", params={"limit": MAX_LIST + 1})
        assert_envelope(resp, 400, "invalid_input")


class TestSuggest:
    def test_most_similar_pathways_of_that_role_only(
        self, pw: httpx.Client, history: list[dict[str, Any]]
    ) -> None:
        resp = suggest(pw, demand_text=AURORA, role=" forklift operator", k=3)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        got = answer["pathways"]
        assert len(got) == 3
        assert {p["pathway"]["role"] for p in got} == {FORKLIFT}
        assert got[0]["pathway"]["pathway_id"] == history[0]["pathway_id"]
        assert got[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
        sims = [p["similarity"] for p in got]
        assert sims == sorted(sims, reverse=True)
        assert history[4]["pathway_id"] not in {p["pathway"]["pathway_id"] for p in got}

    def test_next_step_has_the_best_fill_rate_with_counts(
        self, pw: httpx.Client, history: list[dict[str, Any]]
    ) -> None:
        answer = suggest(pw, demand_text=AURORA, role=FORKLIFT, steps_taken=["Search"]).json()
        assert answer["steps_taken"] == ["search"]
        assert answer["next_step"] == {
            "step": "shortlist",
            "fill_rate": 1.0,
            "filled": 2,
            "total": 2,
        }
        assert answer["candidates"] == [
            {"step": "shortlist", "fill_rate": 1.0, "filled": 2, "total": 2},
            {"step": "outreach", "fill_rate": 0.0, "filled": 0, "total": 2},
        ]
        assert (answer["considered"], answer["matched"]) == (4, 4)  # CNC's "call" never counts

    def test_next_step_from_the_start_and_deeper(
        self, pw: httpx.Client, history: list[dict[str, Any]]
    ) -> None:
        start = suggest(pw, demand_text=AURORA, role=FORKLIFT).json()
        assert start["next_step"] == {"step": "search", "fill_rate": 0.5, "filled": 2, "total": 4}
        deeper = suggest(
            pw, demand_text=AURORA, role=FORKLIFT, steps_taken=["search", "shortlist"]
        ).json()
        assert deeper["next_step"] == {
            "step": "outreach",
            "fill_rate": 1.0,
            "filled": 2,
            "total": 2,
        }
        cnc = suggest(pw, demand_text=AURORA, role=CNC, steps_taken=["search"]).json()
        assert cnc["next_step"] == {"step": "call", "fill_rate": 1.0, "filled": 1, "total": 1}

    def test_no_matching_history_gives_no_next_step(
        self, pw: httpx.Client, history: list[dict[str, Any]]
    ) -> None:
        beyond = suggest(pw, demand_text=AURORA, role=FORKLIFT, steps_taken=["fill"]).json()
        assert (beyond["next_step"], beyond["candidates"], beyond["matched"]) == (None, [], 0)
        assert len(beyond["pathways"]) == 4  # similar pathways are still shown
        nobody = suggest(pw, demand_text=AURORA, role="Astronaut").json()
        assert (nobody["pathways"], nobody["next_step"], nobody["considered"]) == ([], None, 0)

    @pytest.mark.parametrize(
        "body",
        [
            {"role": FORKLIFT},
            {"demand_text": AURORA},
            {"demand_text": AURORA, "role": FORKLIFT, "k": 0},
            {"demand_text": AURORA, "role": FORKLIFT, "k": MAX_K + 1},
            {"demand_text": AURORA, "role": FORKLIFT, "steps_taken": ["no way"]},
            {"demand_text": " ", "role": FORKLIFT},
            {"demand_text": AURORA, "role": FORKLIFT, "extra": True},
        ],
    )
    def test_malformed_suggest_is_422(self, pw: httpx.Client, body: dict[str, Any]) -> None:
        assert_envelope(suggest(pw, **body), 422, "invalid_request")

    def test_through_the_gateway(self, stack: LiveStack, history: list[dict[str, Any]]) -> None:
        with stack.client("gateway") as gw:
            answer = suggest(gw, demand_text=AURORA, role=FORKLIFT, k=1)
            assert answer.status_code == 200, answer.text
            assert answer.json()["pathways"][0]["pathway"]["pathway_id"] == history[0]["pathway_id"]
            got = gw.get(f"/v1/pathways/{history[0]['pathway_id']}")
            assert got.json() == history[0]


class TestObserved:
    def test_every_recorded_pathway_reaches_the_pathways_stream(
        self, stack: LiveStack, history: list[dict[str, Any]]
    ) -> None:
        wanted = {r["pathway_id"] for r in history}
        deadline = time.monotonic() + 15
        with stack.client("observerd") as od:
            while True:
                page = od.get("/v1/observations/pathways", params={"limit": 1000}).json()
                seen = {r["event"]["pathway_id"]: r for r in page["records"]}
                if wanted <= set(seen) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert wanted <= set(seen)
        first = seen[history[0]["pathway_id"]]
        assert first["daemon"] == "pathwayd"
        assert first["event"] == history[0]
        assert first["trace_id"] == history[0]["trace_id"]


class TestDurabilityAndFailures:
    def test_recorded_pathways_survive_kill_9(
        self, stack: LiveStack, pw: httpx.Client, history: list[dict[str, Any]]
    ) -> None:
        total = pw.get("/v1/pathways", params={"limit": MAX_LIST}).json()
        stack.kill_9("pathwayd")
        stack.start("pathwayd")
        with stack.client("pathwayd") as fresh:
            after = fresh.get("/v1/pathways", params={"limit": MAX_LIST}).json()
            assert after == total
            answer = suggest(fresh, demand_text=AURORA, role=FORKLIFT, steps_taken=["search"])
            assert answer.json()["next_step"]["step"] == "shortlist"

    def test_embedd_down_is_502_but_recording_still_works(self, stack: LiveStack) -> None:
        stack.kill_9("embedd")
        with stack.client("pathwayd") as fresh:
            resp = suggest(fresh, demand_text="Need 9 forklift operators", role=FORKLIFT)
            body = assert_envelope(resp, 502, "upstream_unavailable")
            assert "embedd" in body["error"]["message"]
            # A role without history needs no embedding.
            assert suggest(fresh, demand_text="x", role="Astronaut").status_code == 200
            recorded = fresh.post(
                "/v1/pathways", json=pathway("Need 1 cook", "Cook", ["search"], True)
            )
            assert recorded.status_code == 201
