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

from lakehouse_common.contracts import ingest, query, subjects, validate, vectors
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.contracts.ingest import IndexJobRequest
from lakehouse_common.contracts.subjects import SubjectPut
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
        ingest.ingest_path(SMOKE_DATASET),
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
    subject = SubjectPut(dataset=SMOKE_DATASET, row_key="s-1", pii_fields=["name", "phone"])
    p.call(
        "PUT",
        subjects.subject_path(SMOKE_SUBJECT),
        f"row s-1 is subject {SMOKE_SUBJECT} (PII name, phone)",
        expect=(200, 201),
        json=subject.model_dump(mode="json", exclude_unset=True),
    )


def index_step(p: Probe) -> None:
    job = p.call(
        "POST",
        ingest.index_job_path(SMOKE_DATASET),
        f"start indexing into {SMOKE_INDEX}",
        expect=202,
        json=IndexJobRequest(
            index=SMOKE_INDEX, text_template=TEMPLATE, metadata_columns=["role", "city", "state"]
        ).model_dump(exclude_unset=True),
    ).json()
    for _ in range(JOB_POLLS):
        if job.get("state") in ("succeeded", "failed"):
            break
        time.sleep(PAUSE_S)
        job = p.poll("GET", ingest.job_path(job["id"]), "poll the index job").json()
    p.require(
        job.get("state") == "succeeded" and job.get("done") == job.get("total") == len(ROWS),
        f"the job indexed {len(ROWS)} rows",
        f"state {job.get('state')}, {job.get('done')}/{job.get('total')}, {job.get('error')}",
    )
    info = p.typed("the index exists", lambda c: c.vectors().get_index(SMOKE_INDEX))
    p.check(info.count == len(ROWS), f"the index holds {info.count} items")


def search_step(p: Probe) -> None:
    answer = p.typed(
        f"search {SMOKE_QUERY!r} in {SMOKE_INDEX}",
        lambda c: c.matrix().search(SMOKE_QUERY, index=SMOKE_INDEX, k=3),
    )
    results = answer.results
    p.check(
        bool(results)
        and results[0].id == "s-1"
        and results[0].metadata.get("role") == "Forklift Operator",
        "s-1, the forklift operator in Aurora IL, comes first",
        str([(r.id, round(r.distance, 4)) for r in results]),
    )


def learning_step(p: Probe) -> None:
    # Imported here, not at the top: cli_demo brings the roster generator (numpy, pyarrow),
    # which only the story needs, and every probe command would otherwise pay for it at start.
    from lakehouse_common.cli.demo import DemoFailed, tell_story

    workers = p.request("GET", vectors.index_path("workers"), "the demo roster's index")
    p.require(
        workers.status_code == 200,
        "the demo roster is indexed (vectord index workers)",
        "not loaded: `make run` loads it (or `lakehouse demo load`)",
    )

    async def story(c: Clients) -> str:
        try:
            await tell_story(c.matrix())
        except DemoFailed as exc:
            return str(exc)
        return ""

    what = "playbook → boosted search → role gate → exclude swap"
    failed = p.typed(what, story, poll=True)
    if failed:
        p.check(False, what, failed)
        return
    p.check(True, f"{what} (lakehouse demo story)")


def _stream_total(p: Probe, stream: str) -> int:
    listing = p.typed("read the observer's stream counts", lambda c: c.observe().streams())
    return next((s.count for s in listing.streams if s.name == stream), 0)


def validate_step(p: Probe) -> None:
    from lakehouse_common.cli.demo import FORKLIFT_QUERY, FORKLIFT_ROLE  # see learning_step

    answer = p.typed(
        "the warm forklift search",
        lambda c: c.matrix().search(
            FORKLIFT_QUERY, query_role=FORKLIFT_ROLE, k=5, use_playbook=True
        ),
    )
    p.require(bool(answer.results), "it has results")
    top = answer.results[0]
    meta = top.metadata
    demand = {
        "role": meta.get("role"),
        "city": meta.get("city"),
        "state": meta.get("state"),
        "count": 1,
    }
    before = _stream_total(p, "validation_results")
    trace = _trace("validate")
    # The exact bytes of the answer are part of the wire format (SPEC §3): read them raw.
    good = p.call(
        "POST",
        validate.VALIDATE,
        f"validate a fill proposal of {top.id}",
        json=validate.ValidateRequest(
            kind="fill", payload={"demand": demand, "workers": [top.id]}
        ).model_dump(exclude_none=True),
        headers={TRACE_HEADER: trace},
    )
    p.check(good.content == b'{"valid":true,"errors":[]}', "it is valid", good.text[:300])
    bad = p.typed(
        "validate a proposal naming it twice, though excluded",
        lambda c: c.validate().validate(
            "fill",
            {"demand": demand, "workers": [top.id, top.id]},
            context={"exclude_ids": [top.id]},
        ),
    )
    expected = [
        ValidationError.consistency("2 workers proposed; the demand asks for 1").to_wire(),
        ValidationError.consistency(f"worker {top.id} is proposed 2 times").to_wire(),
        ValidationError.policy(f"worker {top.id} is excluded from this demand").to_wire(),
    ]
    errors = [e.to_wire() for e in bad.errors]
    p.check(
        bad.valid is False and errors == expected,
        "it is invalid: too many, a duplicate, an excluded worker",
        str(errors)[:300],
    )
    found = False
    for _ in range(OBSERVER_POLLS):
        page = p.typed(
            "read new validation results",
            lambda c: c.observe().read("validation_results", since=before, limit=1000),
            poll=True,
        )
        if any(r.trace_id == trace for r in page.records):
            found = True
            break
        time.sleep(PAUSE_S / 2)
    p.check(found, "the valid result reached observerd with its trace id", trace)


def audit_step(p: Probe) -> None:
    path = subjects.audit_path(SMOKE_SUBJECT)
    verify = subjects.verify_path(SMOKE_SUBJECT)
    before = p.call("GET", verify, f"verify {SMOKE_SUBJECT}'s audit chain").json()
    sql = f"SELECT id, name, phone FROM {SMOKE_DATASET} WHERE id = 's-1'"
    row: dict[str, Any] | None = None
    # queryd learns that a dataset became governed within `audit.policy_refresh_s`: a query
    # sent before that is (correctly) not audited, so ask again, a bounded number of times.
    for _ in range(AUDIT_ATTEMPTS):
        trace = _trace("audit")
        answer = p.poll(
            "POST",
            query.QUERY,
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
    after = p.call("GET", verify, "verify the chain again").json()
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
