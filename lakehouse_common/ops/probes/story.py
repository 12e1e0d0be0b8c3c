"""The end-to-end story of the smoke chain (SPEC §9, issue 9), through the gateway:

1. **ingest** a small roster of its own (dataset ``smoke_story``, 12 rows, CSV);
2. make row ``s-1`` a governed subject (``SMOKE-1``, PII ``name``, ``phone``);
3. **index** it (an ingestd job: embedd → vectord index ``smoke_story``);
4. **search** it through matrixd: the forklift operator in Aurora comes first;
5. **record a playbook → boosted search** (and the role gate, and an ``exclude_ids`` swap):
   ``lakehouse demo story``'s own steps over the demo roster (:func:`cli_demo.tell_story`);
6. **validate** a fill proposal made of the warm search's top worker (valid) and a bad one
   (its exact ValidationErrors), and see the validation reported to observerd;
7. **audit verify**: a query that reads ``SMOKE-1``'s PII leaves an audit row with the query's
   trace id, and catalogd verifies the subject's HMAC chain.

Steps 5 and 6 need the demo roster (``make run`` loads it: dataset and index ``workers``).
Re-running is safe: the ingest replaces ``smoke_story``'s rows with the same rows, the index
upserts the same ids, the subject manifest is put again unchanged, and the demo story deletes
its own earlier recording first.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
from typing import Any, Final

from lakehouse_common.ops.probes.tally import Probe
from lakehouse_common.tracing import TRACE_HEADER
from lakehouse_common.validation_error import ValidationError

__all__ = ["SMOKE_DATASET", "SMOKE_SUBJECT", "run_story"]

SMOKE_DATASET: Final = "smoke_story"
SMOKE_INDEX: Final = "smoke_story"
SMOKE_SUBJECT: Final = "SMOKE-1"
SMOKE_QUERY: Final = "Need a Forklift Operator in Aurora IL"
# (id, name, role, city, state, phone, skills): s-1 is the one the query must find.
ROWS: Final = (
    (
        "s-1",
        "Ana Smoke",
        "Forklift Operator",
        "Aurora",
        "IL",
        "630-555-0101",
        "forklift; pallet jack; shipping and receiving",
    ),
    ("s-2", "Ben Smoke", "CNC Operator", "Detroit", "MI", "313-555-0102", "CNC; lathe; blueprints"),
    (
        "s-3",
        "Cleo Smoke",
        "Registered Nurse",
        "Boston",
        "MA",
        "617-555-0103",
        "patient care; triage; IV therapy",
    ),
    ("s-4", "Dev Smoke", "Welder", "Houston", "TX", "713-555-0104", "MIG; TIG; pipe welding"),
    (
        "s-5",
        "Eve Smoke",
        "Electrician",
        "Denver",
        "CO",
        "303-555-0105",
        "wiring; conduit; panel upgrades",
    ),
    ("s-6", "Finn Smoke", "Line Cook", "Chicago", "IL", "312-555-0106", "grill; prep; food safety"),
    (
        "s-7",
        "Gia Smoke",
        "Truck Driver",
        "Atlanta",
        "GA",
        "404-555-0107",
        "CDL-A; long haul; logbooks",
    ),
    (
        "s-8",
        "Hal Smoke",
        "Data Entry Clerk",
        "Phoenix",
        "AZ",
        "602-555-0108",
        "typing; spreadsheets; filing",
    ),
    (
        "s-9",
        "Ivy Smoke",
        "Carpenter",
        "Portland",
        "OR",
        "503-555-0109",
        "framing; finish carpentry; cabinets",
    ),
    (
        "s-10",
        "Jo Smoke",
        "Security Guard",
        "Miami",
        "FL",
        "305-555-0110",
        "patrol; access control; CCTV",
    ),
    (
        "s-11",
        "Kai Smoke",
        "Dental Assistant",
        "Columbus",
        "OH",
        "614-555-0111",
        "x-rays; sterilization; charting",
    ),
    (
        "s-12",
        "Lu Smoke",
        "Pharmacy Technician",
        "Seattle",
        "WA",
        "206-555-0112",
        "dispensing; inventory; insurance billing",
    ),
)
COLUMNS: Final = ("id", "name", "role", "city", "state", "phone", "skills")
TEMPLATE: Final = "{role} in {city}, {state}. Skills: {skills}"

# Bounded waits (attempts × pause), never open-ended.
JOB_POLLS: Final = 600
OBSERVER_POLLS: Final = 50
AUDIT_ATTEMPTS: Final = 20
PAUSE_S: Final = 0.25


def roster_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(ROWS)
    return out.getvalue().encode()


def _trace(step: str) -> str:
    return f"smoke-{step}-{secrets.token_hex(4)}"


def ingest_step(p: Probe) -> None:
    manifest = p.call(
        "POST",
        f"/v1/ingest/{SMOKE_DATASET}",
        f"ingest {len(ROWS)} rows as {SMOKE_DATASET}",
        expect=201,
        content=roster_csv(),
        params={"mode": "replace", "required": "id,role"},
        headers={"content-type": "text/csv"},
    ).json()
    p.check(
        manifest.get("row_count") == len(ROWS) and manifest.get("version", 0) >= 1,
        f"version {manifest.get('version')} holds {manifest.get('row_count')} rows",
    )
    subject = {"dataset": SMOKE_DATASET, "row_key": "s-1", "pii_fields": ["name", "phone"]}
    p.call(
        "PUT",
        f"/v1/catalog/subjects/{SMOKE_SUBJECT}",
        f"row s-1 is subject {SMOKE_SUBJECT} (PII name, phone)",
        expect=(200, 201),
        json=subject,
    )


def index_step(p: Probe) -> None:
    job = p.call(
        "POST",
        f"/v1/ingest/{SMOKE_DATASET}/index",
        f"start indexing into {SMOKE_INDEX}",
        expect=202,
        json={
            "index": SMOKE_INDEX,
            "text_template": TEMPLATE,
            "metadata_columns": ["role", "city", "state"],
        },
    ).json()
    for _ in range(JOB_POLLS):
        if job.get("state") in ("succeeded", "failed"):
            break
        time.sleep(PAUSE_S)
        job = p.poll("GET", f"/v1/ingest/jobs/{job['id']}", "poll the index job").json()
    p.require(
        job.get("state") == "succeeded" and job.get("done") == job.get("total") == len(ROWS),
        f"the job indexed {len(ROWS)} rows",
        f"state {job.get('state')}, {job.get('done')}/{job.get('total')}, {job.get('error')}",
    )
    info = p.call("GET", f"/v1/vectors/indexes/{SMOKE_INDEX}", "the index exists").json()
    p.check(info.get("count") == len(ROWS), f"the index holds {info.get('count')} items")


def search_step(p: Probe) -> None:
    answer = p.call(
        "POST",
        "/v1/matrix/search",
        f"search {SMOKE_QUERY!r} in {SMOKE_INDEX}",
        json={"query_text": SMOKE_QUERY, "index": SMOKE_INDEX, "k": 3},
    ).json()
    results = answer.get("results", [])
    top = results[0] if results else {}
    p.check(
        top.get("id") == "s-1" and top.get("metadata", {}).get("role") == "Forklift Operator",
        "s-1, the forklift operator in Aurora IL, comes first",
        str([(r["id"], round(r["distance"], 4)) for r in results]),
    )


def learning_step(p: Probe) -> None:
    # Imported here, not at the top: cli_demo brings the roster generator (numpy, pyarrow),
    # which only the story needs, and every probe command would otherwise pay for it at start.
    from lakehouse_common.cli.demo import DemoFailed, tell_story

    workers = p.request("GET", "/v1/vectors/indexes/workers", "the demo roster's index")
    p.require(
        workers.status_code == 200,
        "the demo roster is indexed (vectord index workers)",
        "not loaded: `make run` loads it (or `lakehouse demo load`)",
    )
    try:
        tell_story(p.gateway)
    except DemoFailed as exc:
        p.check(False, "playbook → boosted search → role gate → exclude swap", str(exc))
        return
    p.check(True, "playbook → boosted search → role gate → exclude swap (lakehouse demo story)")


def _stream_total(p: Probe, stream: str) -> int:
    listing = p.call("GET", "/v1/observations", "read the observer's stream counts").json()
    return int(next((s["count"] for s in listing["streams"] if s["name"] == stream), 0))


def validate_step(p: Probe) -> None:
    from lakehouse_common.cli.demo import FORKLIFT_QUERY, FORKLIFT_ROLE  # see learning_step

    answer = p.call(
        "POST",
        "/v1/matrix/search",
        "the warm forklift search",
        json={
            "query_text": FORKLIFT_QUERY,
            "query_role": FORKLIFT_ROLE,
            "k": 5,
            "use_playbook": True,
        },
    ).json()
    p.require(bool(answer.get("results")), "it has results")
    top = answer["results"][0]
    meta = top.get("metadata") or {}
    demand = {
        "role": meta.get("role"),
        "city": meta.get("city"),
        "state": meta.get("state"),
        "count": 1,
    }
    before = _stream_total(p, "validation_results")
    trace = _trace("validate")
    good = p.call(
        "POST",
        "/v1/validate",
        f"validate a fill proposal of {top['id']}",
        json={"kind": "fill", "payload": {"demand": demand, "workers": [top["id"]]}},
        headers={TRACE_HEADER: trace},
    )
    p.check(good.content == b'{"valid":true,"errors":[]}', "it is valid", good.text[:300])
    bad = p.call(
        "POST",
        "/v1/validate",
        "validate a proposal naming it twice, though excluded",
        json={
            "kind": "fill",
            "payload": {"demand": demand, "workers": [top["id"], top["id"]]},
            "context": {"exclude_ids": [top["id"]]},
        },
    ).json()
    expected = [
        ValidationError.consistency("2 workers proposed; the demand asks for 1").to_wire(),
        ValidationError.consistency(f"worker {top['id']} is proposed 2 times").to_wire(),
        ValidationError.policy(f"worker {top['id']} is excluded from this demand").to_wire(),
    ]
    p.check(
        bad.get("valid") is False and bad.get("errors") == expected,
        "it is invalid: too many, a duplicate, an excluded worker",
        str(bad.get("errors"))[:300],
    )
    found = False
    for _ in range(OBSERVER_POLLS):
        page = p.poll(
            "GET",
            "/v1/observations/validation_results",
            "read new validation results",
            params={"since": before, "limit": 1000},
        ).json()
        if any(r.get("trace_id") == trace for r in page.get("records", [])):
            found = True
            break
        time.sleep(PAUSE_S / 2)
    p.check(found, "the valid result reached observerd with its trace id", trace)


def audit_step(p: Probe) -> None:
    path = f"/v1/catalog/subjects/{SMOKE_SUBJECT}/audit"
    before = p.call("GET", f"{path}/verify", f"verify {SMOKE_SUBJECT}'s audit chain").json()
    sql = f"SELECT id, name, phone FROM {SMOKE_DATASET} WHERE id = 's-1'"
    row: dict[str, Any] | None = None
    # queryd learns that a dataset became governed within `audit.policy_refresh_s`: a query
    # sent before that is (correctly) not audited, so ask again, a bounded number of times.
    for _ in range(AUDIT_ATTEMPTS):
        trace = _trace("audit")
        answer = p.poll(
            "POST",
            "/v1/query",
            f"query {SMOKE_SUBJECT}'s PII",
            json={"sql": sql},
            headers={TRACE_HEADER: trace},
        ).json()
        if answer.get("row_count") != 1:
            p.require(False, "the query answers s-1's row", str(answer)[:200])
        rows = p.poll(
            "GET", path, "read the audit rows since", params={"since_seq": before["count"]}
        ).json()["rows"]
        row = next((r for r in rows if r["accessor"]["trace_id"] == trace), None)
        if row is not None:
            break
        time.sleep(PAUSE_S)
    p.require(
        row is not None,
        "a query of its PII left an audit row carrying the query's trace id",
        f"no row after {AUDIT_ATTEMPTS} queries",
    )
    assert row is not None
    p.check(
        row["accessor"]["daemon"] == "queryd"
        and row["accessor"]["purpose"] == "query"
        and set(row["fields"]) == {"name", "phone"},
        "by queryd, purpose query, fields name and phone",
        str(row)[:300],
    )
    after = p.call("GET", f"{path}/verify", "verify the chain again").json()
    p.check(
        after.get("verified") is True
        and after.get("error") is None
        and after.get("count", 0) > before.get("count", 0),
        f"verified: {after.get('count')} rows, tip {str(after.get('tip'))[:12]}…",
        str(after)[:300],
    )


STEPS: Final = (
    ("ingest", ingest_step),
    ("index", index_step),
    ("search", search_step),
    ("record playbook → boosted search", learning_step),
    ("validate", validate_step),
    ("audit verify", audit_step),
)


def run_story(p: Probe) -> None:
    for number, (title, step) in enumerate(STEPS, start=1):
        with p.tally.section(f"[story {number}/{len(STEPS)}] {title}"):
            step(p)
