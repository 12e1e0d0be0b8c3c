"""validatord test helpers: a small real roster ingested through ingestd, and polling observerd
for reported events."""

from __future__ import annotations

import io
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from lakehouse_common.ops.roster import generate_roster
from tests.support.stack import LiveStack

ROSTER_ROWS = 400
ROSTER_SEED = 7

# Text holding an SSN-like number: the guard must flag every one.
SSN_TEXTS = [
    "My SSN is 123-45-6789.",
    "ssn 123 45 6789",
    "123-45-6789",
    "SSN:123-45-6789",
    "(123-45-6789)",
    "ID 123-45-6789, thanks",
    "Social Security Number 078-05-1120",
    "at the end 219-09-9999",
    "\n123 45 6789\n",
    "ssn=123-45-6789",
    "SSN#123-45-6789",
    "Her number is 987-65-4321 and her phone 555-123-4567",
    "123 45 6789 is on file",
    "“123-45-6789”",
    "SSN 123456789",
    "social security: 123456789",
    "123-45 6789",
    "tab\t123-45-6789",
    "Please confirm 001-23-4567 before Monday",
    "SSN: 123-45-6789; phone: (555) 123-4567",
    "Ref:123-45-6789.",
    "ssn -> 321 54 9876",
    "1. 123-45-6789",
    "Item 3 123-45-6789",
    "a/123-45-6789",
    "No.123-45-6789",
]

# Phone numbers (and other digit runs) in prose: the guard must never flag them.
PHONE_TEXTS = [
    "555-123-4567",
    "(555) 123-4567",
    "+1 555 123 4567",
    "555 123 4567",
    "555.123.4567",
    "1-555-123-4567",
    "+1-555-123-4567",
    "+1 (555) 123-4567",
    "5551234567",
    "+15551234567",
    "(555)123-4567",
    "Call 555-123-4567 ext. 89 after 5",
    "1 (555) 123 4567",
    "+44 20 7946 0958",
    "+44 7911 123456",
    "+33 1 23 45 67 89",
    "+49 30 12345678",
    "+61 2 9876 5432",
    "dial 555-0142",
    "(312) 555-0188",
    "tel:+1-312-555-0188",
    "800-555-0199",
    "+91 98765 43210",
    "+31 6 1234 5678",
    "+31 612 34 5678",
    "Call 312-555-0100 or 312-555-0101",
    "ZIP 60601-1234",
    "order 123456789",
    "+7 495 123-45-67",
    "+46 8 123 45 67",
    "+353 87 123 4567",
    "+420 123 456 789",
    "on 2024-05-01 at 12:30",
]


@dataclass(frozen=True)
class Worker:
    id: str
    role: str
    city: str
    state: str


class RosterFacts:
    """The generated roster, to build proposals that are right or wrong on purpose."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.workers = [Worker(r["id"], r["role"], r["city"], r["state"]) for r in rows]
        self.by_id = {w.id: w for w in self.workers}
        groups: dict[tuple[str, str], list[Worker]] = defaultdict(list)
        for w in self.workers:
            groups[(w.role, w.state)].append(w)
        self.groups = groups

    def group(self, size: int) -> list[Worker]:
        """`size` workers sharing one role and one state."""
        for members in sorted(self.groups.values(), key=len, reverse=True):
            if len(members) >= size:
                return members[:size]
        raise AssertionError(f"no role/state group of {size}")

    def other_role(self, like: Worker) -> Worker:
        """A worker in `like`'s state with another role."""
        return next(w for w in self.workers if w.state == like.state and w.role != like.role)

    def other_state(self, like: Worker) -> Worker:
        """A worker with `like`'s role in another state."""
        return next(w for w in self.workers if w.role == like.role and w.state != like.state)


def ingest_roster(stack: LiveStack, dataset: str = "workers") -> RosterFacts:
    """Generate the roster, ingest it through ingestd, wait until queryd serves it."""
    table = generate_roster(ROSTER_ROWS, seed=ROSTER_SEED)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    with stack.client("ingestd") as ingestd:
        resp = ingestd.post(
            f"/v1/ingest/{dataset}",
            params={"format": "parquet"},
            content=buf.getvalue(),
            timeout=120,
        )
    assert resp.status_code == 201, resp.text
    with stack.client("queryd") as queryd:
        eventually(
            lambda: (
                queryd.post("/v1/query", json={"sql": f"SELECT count(*) FROM {dataset}"})
                .json()
                .get("rows")
                == [[ROSTER_ROWS]]
            )
        )
    return RosterFacts(table.select(["id", "role", "city", "state"]).to_pylist())


def eventually(check: Any, *, attempts: int = 200, pause_s: float = 0.05) -> Any:
    """Poll `check()` until it returns a truthy value (bounded; no timing is asserted)."""
    for _ in range(attempts):
        value = check()
        if value:
            return value
        time.sleep(pause_s)
    raise AssertionError("condition never held")


def observed(stack: LiveStack, stream: str, trace_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The records of `stream` carrying `trace_id`, once there are `count` of them."""

    def find() -> list[dict[str, Any]]:
        with stack.client("observerd") as obs:
            resp = obs.get(f"/v1/observations/{stream}", params={"limit": 1000})
        if resp.status_code != 200:
            return []
        found = [r for r in resp.json()["records"] if r.get("trace_id") == trace_id]
        return found if len(found) >= count else []

    records: list[dict[str, Any]] = eventually(find)
    return records
