"""POST /v1/validate and GET /v1/sessions against real daemons: catalogd + ingestd + queryd
(a generated roster ingested for real), observerd (reports) and the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack
from tests.support.validate import (
    PHONE_TEXTS,
    SSN_TEXTS,
    RosterFacts,
    Worker,
    ingest_roster,
    observed,
)

MAX_FILL_WORKERS = 20
SESSIONS_MAX = 30


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("validatord"),
        {
            "query": {"catalog_refresh_s": 0.2},
            "validator": {
                "max_fill_workers": MAX_FILL_WORKERS,
                "email_subject_max_chars": 60,
                "email_body_max_chars": 400,
                "sessions_max_limit": SESSIONS_MAX,
            },
        },
    )
    with live.running("catalogd", "ingestd", "queryd", "observerd", "validatord", "gateway"):
        yield live


@pytest.fixture(scope="module")
def roster(stack: LiveStack) -> RosterFacts:
    return ingest_roster(stack)


@pytest.fixture(scope="module")
def vd(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("validatord") as client:
        yield client


def validate(client: httpx.Client, kind: str, payload: Any, **extra: Any) -> dict[str, Any]:
    resp = client.post("/v1/validate", json={"kind": kind, "payload": payload, **extra})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"valid", "errors"}
    assert body["valid"] is (body["errors"] == [])
    return body


def demand_for(workers: list[Worker], count: int | None = None, **over: Any) -> dict[str, Any]:
    first = workers[0]
    demand: dict[str, Any] = {
        "role": first.role,
        "city": first.city,
        "state": first.state,
        "count": len(workers) if count is None else count,
    }
    demand.update(over)
    return demand


def proposal(chosen: list[Worker], /, **over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "demand": demand_for(chosen),
        "workers": [{"id": w.id} for w in chosen],
    }
    payload.update(over)
    return payload


@pytest.mark.usefixtures("roster")
class TestValidateFill:
    def test_a_proposal_that_meets_the_demand_is_valid(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        assert validate(vd, "fill", proposal(roster.group(3))) == {"valid": True, "errors": []}

    def test_answers_through_the_gateway(self, stack: LiveStack, roster: RosterFacts) -> None:
        with stack.client("gateway") as gw:
            assert validate(gw, "fill", proposal(roster.group(2)))["valid"] is True

    def test_role_matches_case_and_space_insensitively(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        workers = roster.group(2)
        messy = "  " + "   ".join(workers[0].role.upper().split()) + " "
        demand = demand_for(workers, role=messy, state=workers[0].state.lower())
        payload = proposal(workers, demand=demand)
        assert validate(vd, "fill", payload)["valid"] is True

    def test_bare_id_strings_are_accepted(self, vd: httpx.Client, roster: RosterFacts) -> None:
        workers = roster.group(2)
        payload = proposal(workers, workers=[w.id for w in workers])
        assert validate(vd, "fill", payload)["valid"] is True

    def test_too_few_workers_is_incomplete(self, vd: httpx.Client, roster: RosterFacts) -> None:
        workers = roster.group(3)
        payload = proposal(workers[:2], demand=demand_for(workers))
        assert validate(vd, "fill", payload)["errors"] == [
            {"Completeness": {"reason": "2 workers proposed; the demand asks for 3"}}
        ]

    def test_too_many_workers_is_inconsistent(self, vd: httpx.Client, roster: RosterFacts) -> None:
        workers = roster.group(3)
        payload = proposal(workers, demand=demand_for(workers, count=2))
        assert validate(vd, "fill", payload)["errors"] == [
            {"Consistency": {"reason": "3 workers proposed; the demand asks for 2"}}
        ]

    def test_unknown_worker(self, vd: httpx.Client, roster: RosterFacts) -> None:
        workers = roster.group(2)
        payload = proposal(workers, workers=[{"id": workers[0].id}, {"id": "w-999999"}])
        assert validate(vd, "fill", payload)["errors"] == [
            {"Consistency": {"reason": "worker w-999999 is not in the roster"}}
        ]

    def test_ids_are_bound_as_parameters_not_spliced_into_sql(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        sneaky = "w-1') OR ('1'='1"
        workers = roster.group(1)
        payload = proposal(workers, workers=[{"id": sneaky}])
        assert validate(vd, "fill", payload)["errors"] == [
            {"Consistency": {"reason": f"worker {sneaky} is not in the roster"}}
        ]

    def test_role_mismatch(self, vd: httpx.Client, roster: RosterFacts) -> None:
        first = roster.group(1)[0]
        other = roster.other_role(first)
        payload = proposal([first, other])
        assert validate(vd, "fill", payload)["errors"] == [
            {"Consistency": {"reason": f"worker {other.id} is a {other.role}, not a {first.role}"}}
        ]

    def test_location_outside_the_demands_state(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        first = roster.group(1)[0]
        away = roster.other_state(first)
        payload = proposal([first, away])
        reason = f"worker {away.id} is in {away.city}, {away.state}, outside {first.state}"
        assert validate(vd, "fill", payload)["errors"] == [{"Consistency": {"reason": reason}}]

    def test_duplicate_worker(self, vd: httpx.Client, roster: RosterFacts) -> None:
        first = roster.group(1)[0]
        payload = proposal([first, first])
        assert validate(vd, "fill", payload)["errors"] == [
            {"Consistency": {"reason": f"worker {first.id} is proposed 2 times"}}
        ]

    def test_excluded_worker_from_payload_or_context(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        a, b = roster.group(2)
        policy = [{"Policy": {"reason": f"worker {b.id} is excluded from this demand"}}]
        in_payload = proposal([a, b], exclude_ids=[b.id])
        assert validate(vd, "fill", in_payload)["errors"] == policy
        in_context = validate(vd, "fill", proposal([a, b]), context={"exclude_ids": [b.id]})
        assert in_context["errors"] == policy

    def test_payload_facts_that_contradict_the_roster(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        a, b = roster.group(2)
        payload = proposal([a, b])
        payload["workers"][1]["city"] = "Atlantis"
        reason = f"worker {b.id}: the payload says city 'Atlantis', the roster says {b.city!r}"
        assert validate(vd, "fill", payload)["errors"] == [{"Consistency": {"reason": reason}}]

    def test_context_demand_wins_and_the_payload_must_agree(
        self, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        workers = roster.group(2)
        context = {"demand": demand_for(workers)}
        no_demand = {"workers": [w.id for w in workers]}
        assert validate(vd, "fill", no_demand, context=context)["valid"] is True
        disagreeing = proposal(workers, demand=demand_for(workers, count=5))
        assert validate(vd, "fill", disagreeing, context=context)["errors"] == [
            {
                "Consistency": {
                    "reason": "the payload's demand differs from the demand in context "
                    "(count 5 ≠ 2)"
                }
            }
        ]

    def test_several_problems_are_all_reported(self, vd: httpx.Client, roster: RosterFacts) -> None:
        a, b = roster.group(2)
        other = roster.other_role(a)
        payload = proposal([a, a, other], demand=demand_for([a, b], count=4))
        errors = validate(vd, "fill", payload)["errors"]
        assert [next(iter(e)) for e in errors] == ["Completeness", "Consistency", "Consistency"]

    @pytest.mark.parametrize(
        ("payload", "errors"),
        [
            (
                [1, 2],
                [{"Schema": {"field": "$", "reason": "expected a JSON object, got an array"}}],
            ),
            (
                {"workers": ["w-1"]},
                [{"Schema": {"field": "demand", "reason": "required (or give it in context)"}}],
            ),
            (
                {"demand": {"role": "Welder", "state": "IL", "count": 1}},
                [{"Schema": {"field": "workers", "reason": "required"}}],
            ),
            (
                {
                    "demand": {"role": " ", "state": "Illinois", "count": True},
                    "workers": ["w-1", {"name": "x"}, 7, ""],
                    "exclude_ids": "w-2",
                },
                [
                    {
                        "Schema": {
                            "field": "demand.role",
                            "reason": "expected a non-empty string, got a string",
                        }
                    },
                    {
                        "Schema": {
                            "field": "demand.state",
                            "reason": "expected a two-letter state code, got a string",
                        }
                    },
                    {
                        "Schema": {
                            "field": "demand.count",
                            "reason": "expected an integer ≥ 1, got a boolean",
                        }
                    },
                    {
                        "Schema": {
                            "field": "workers[1].id",
                            "reason": "required: a non-empty string",
                        }
                    },
                    {
                        "Schema": {
                            "field": "workers[2]",
                            "reason": "expected an id or an object, got a number",
                        }
                    },
                    {"Schema": {"field": "workers[3]", "reason": "empty worker id"}},
                    {
                        "Schema": {
                            "field": "exclude_ids",
                            "reason": "expected an array, got a string",
                        }
                    },
                ],
            ),
            (
                {
                    "demand": {"role": "Welder", "state": "IL", "count": 1},
                    "workers": [{"id": "w-1", "role": 3}],
                },
                [
                    {
                        "Schema": {
                            "field": "workers[0].role",
                            "reason": "expected a string, got a number",
                        }
                    }
                ],
            ),
        ],
        ids=["not-an-object", "no-demand", "no-workers", "many", "claim-type"],
    )
    def test_schema_errors(
        self, vd: httpx.Client, payload: Any, errors: list[dict[str, Any]]
    ) -> None:
        assert validate(vd, "fill", payload)["errors"] == errors

    def test_too_many_workers_for_one_proposal_is_a_schema_error(self, vd: httpx.Client) -> None:
        ids = [f"w-{n}" for n in range(MAX_FILL_WORKERS + 1)]
        payload = {"demand": {"role": "Loader", "state": "CA", "count": 1}, "workers": ids}
        assert validate(vd, "fill", payload)["errors"] == [
            {
                "Schema": {
                    "field": "workers",
                    "reason": f"{MAX_FILL_WORKERS + 1} workers; a proposal holds at most "
                    f"{MAX_FILL_WORKERS}",
                }
            }
        ]

    def test_each_result_is_reported_to_observerd(
        self, stack: LiveStack, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        resp = vd.post("/v1/validate", json={"kind": "fill", "payload": proposal(roster.group(2))})
        assert resp.status_code == 200
        (record,) = observed(stack, "validation_results", resp.headers[TRACE_HEADER])
        assert record["daemon"] == "validatord"
        assert record["event"] == {
            "kind": "fill",
            "valid": True,
            "error_count": 0,
            "errors": [],
            "source": "validate",
        }


class TestValidateEmail:
    VALID = {"to": "ana.diaz@example.com", "subject": "Shift on Monday", "body": "Hi Ana, ..."}

    def test_valid_email(self, vd: httpx.Client) -> None:
        assert validate(vd, "email", self.VALID)["valid"] is True

    def test_schema_errors(self, vd: httpx.Client) -> None:
        errors = validate(vd, "email", {"to": "not-an-address", "body": ["x"]})["errors"]
        assert errors == [
            {"Schema": {"field": "to", "reason": "not a valid email address"}},
            {"Schema": {"field": "subject", "reason": "required"}},
            {"Schema": {"field": "body", "reason": "expected a string, got an array"}},
        ]

    def test_empty_subject_and_body_are_incomplete(self, vd: httpx.Client) -> None:
        errors = validate(vd, "email", {**self.VALID, "subject": " ", "body": ""})["errors"]
        assert errors == [
            {"Completeness": {"reason": "subject is empty"}},
            {"Completeness": {"reason": "body is empty"}},
        ]

    def test_length_bounds(self, vd: httpx.Client) -> None:
        errors = validate(vd, "email", {**self.VALID, "body": "x" * 401})["errors"]
        assert errors == [{"Policy": {"reason": "body is 401 characters; at most 400"}}]

    def test_ssn_in_the_body_is_a_policy_error_that_does_not_echo_it(
        self, vd: httpx.Client
    ) -> None:
        body = "Hi, your SSN 123-45-6789 is on file. Call 555-123-4567."
        errors = validate(vd, "email", {**self.VALID, "body": body})["errors"]
        assert errors == [
            {
                "Policy": {
                    "reason": "body contains a number shaped like a Social Security number "
                    "(ddd-dd-dddd) at character 13; never send SSNs"
                }
            }
        ]
        assert "6789" not in str(errors)

    @pytest.mark.parametrize("text", SSN_TEXTS)
    def test_ssn_table_through_the_api(self, vd: httpx.Client, text: str) -> None:
        assert validate(vd, "email", {**self.VALID, "body": f"Note: {text}"})["valid"] is False

    @pytest.mark.parametrize("text", PHONE_TEXTS)
    def test_phone_table_through_the_api(self, vd: httpx.Client, text: str) -> None:
        assert validate(vd, "email", {**self.VALID, "body": f"Reach me at {text}"})["valid"]


class TestValidateSms:
    def test_valid_sms(self, vd: httpx.Client) -> None:
        payload = {"to": "(555) 123-4567", "body": "Shift confirmed, call 555-123-4567"}
        assert validate(vd, "sms", payload) == {"valid": True, "errors": []}

    def test_over_160_characters(self, vd: httpx.Client) -> None:
        errors = validate(vd, "sms", {"to": "+1 555 123 4567", "body": "é" * 161})["errors"]
        assert errors == [
            {"Policy": {"reason": "body is 161 characters; an SMS holds at most 160"}}
        ]

    def test_invalid_phone_and_ssn(self, vd: httpx.Client) -> None:
        errors = validate(vd, "sms", {"to": "123-45-6789", "body": "SSN 123 45 6789"})["errors"]
        assert errors == [
            {"Schema": {"field": "to", "reason": "not a valid phone number"}},
            {
                "Policy": {
                    "reason": "body contains a number shaped like a Social Security number "
                    "(ddd-dd-dddd) at character 4; never send SSNs"
                }
            },
        ]

    def test_missing_fields(self, vd: httpx.Client) -> None:
        assert validate(vd, "sms", {})["errors"] == [
            {"Schema": {"field": "to", "reason": "required"}},
            {"Schema": {"field": "body", "reason": "required"}},
        ]


class TestMalformedRequests:
    @pytest.mark.parametrize(
        "body",
        [
            {"kind": "letter", "payload": {}},
            {"payload": {}},
            {"kind": "email"},
            {"kind": "email", "payload": {}, "extra": 1},
            {"kind": "email", "payload": {}, "context": [1]},
            {"kind": "fill", "payload": {}, "context": {"demand": {"role": "x", "count": "3"}}},
            {"kind": "fill", "payload": {}, "context": {"exclude_ids": "w-1"}},
        ],
        ids=[
            "unknown-kind",
            "no-kind",
            "no-payload",
            "extra-key",
            "context-not-object",
            "bad-context-demand",
            "bad-context-excludes",
        ],
    )
    def test_answers_422_in_the_envelope(self, vd: httpx.Client, body: dict[str, Any]) -> None:
        assert_envelope(vd.post("/v1/validate", json=body), 422, "invalid_request")

    def test_bad_fill_context_names_the_field(self, vd: httpx.Client) -> None:
        body = {"kind": "fill", "payload": {}, "context": {"demand": {"role": "x", "count": 0}}}
        err = assert_envelope(vd.post("/v1/validate", json=body), 422, "invalid_request")
        locs = [d["loc"] for d in err["error"]["details"]]
        assert ["body", "context", "demand", "state"] in locs
        assert ["body", "context", "demand", "count"] in locs

    def test_not_json_is_422(self, vd: httpx.Client) -> None:
        resp = vd.post(
            "/v1/validate", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert_envelope(resp, 422, "invalid_request")


class TestSessions:
    def test_empty_log_lists_nothing(self, vd: httpx.Client) -> None:
        resp = vd.get("/v1/sessions")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"data": [], "count": 0, "skipped": 0}

    @pytest.mark.parametrize("limit", ["0", "-1", str(SESSIONS_MAX + 1), "many"])
    def test_limit_out_of_bounds_is_422(self, vd: httpx.Client, limit: str) -> None:
        assert_envelope(vd.get("/v1/sessions", params={"limit": limit}), 422, "invalid_request")


class TestQuerydDown:
    """Runs last: it kills queryd."""

    def test_fill_answers_503_naming_queryd_and_other_kinds_still_work(
        self, stack: LiveStack, vd: httpx.Client, roster: RosterFacts
    ) -> None:
        stack.kill_9("queryd")
        resp = vd.post("/v1/validate", json={"kind": "fill", "payload": proposal(roster.group(1))})
        body = assert_envelope(resp, 503, "roster_unavailable")
        assert "queryd is unavailable" in body["error"]["message"]
        assert body["error"]["details"]["daemon"] == "queryd"
        sms = {"to": "555-123-4567", "body": "hi"}
        assert validate(vd, "sms", sms)["valid"] is True
