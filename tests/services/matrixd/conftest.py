"""One real stack for the package: embedd (its model loads once, ~7 s), vectord, observerd,
matrixd and the gateway; test_retrieve adds the lake daemons to it.

Every test gets its own vectord index holding the same small roster (`fresh_index`): playbooks
are keyed by index (the lookup filters on it), so recordings made by one test never touch
another's searches although they share one playbook index.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.stack import LiveStack

# Start order (SPEC §2); matrixd itself calls nothing at start.
# catalogd: matrixd asks it which datasets are governed (subject audit, SPEC §8).
CORE = ("catalogd", "embedd", "vectord", "observerd", "matrixd", "gateway")

ROLES = ("Forklift Operator", "CNC Operator", "Welder", "Registered Nurse", "Warehouse Associate")
CITIES = (
    ("Aurora", "IL"),
    ("Joliet", "IL"),
    ("Detroit", "MI"),
    ("Houston", "TX"),
    ("Phoenix", "AZ"),
    ("Aurora", "CO"),
)

FORKLIFT_QUERY = "Need 3 Forklift Operators in Aurora IL"
FORKLIFT = "Forklift Operator"
CNC_QUERY = "Need 1 CNC Operator in Detroit MI"
CNC = "CNC Operator"


@dataclass(frozen=True)
class Roster:
    items: list[dict[str, Any]]  # vectord items: {id, vector, metadata}

    def by_id(self, worker_id: str) -> dict[str, Any]:
        return next(item for item in self.items if item["id"] == worker_id)

    def ids_where(self, **wanted: Any) -> list[str]:
        return [
            item["id"]
            for item in self.items
            if all(item["metadata"][k] == v for k, v in wanted.items())
        ]


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("matrixd"))
    with live.running(*CORE, timeout_s=120):
        yield live


@pytest.fixture(scope="package")
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("gateway"), timeout=60) as client:
        yield client


def embed(gw: httpx.Client, *texts: str) -> list[list[float]]:
    resp = gw.post("/v1/embed", json={"texts": list(texts)})
    assert resp.status_code == 200, resp.text
    vectors: list[list[float]] = resp.json()["vectors"]
    return vectors


@pytest.fixture(scope="package")
def roster(gw: httpx.Client) -> Roster:
    """30 workers, one per (role, city); `available` varies. Vectors from the real embedd."""
    metadata = [
        {"role": role, "city": city, "state": state, "available": n % 4 < 2}
        for n, (role, (city, state)) in enumerate(
            (role, place) for role in ROLES for place in CITIES
        )
    ]
    texts = [f"{m['role']} in {m['city']}, {m['state']}" for m in metadata]
    vectors = embed(gw, *texts)
    items = [
        {"id": f"w-{n + 1}", "vector": vector, "metadata": meta}
        for n, (vector, meta) in enumerate(zip(vectors, metadata, strict=True))
    ]
    return Roster(items)


def make_index(gw: httpx.Client, roster: Roster) -> str:
    name = f"t-{secrets.token_hex(4)}"
    resp = gw.put(f"/v1/vectors/indexes/{name}", json={"dim": 384, "space": "cosine"})
    assert resp.status_code == 201, resp.text
    resp = gw.post(f"/v1/vectors/indexes/{name}/add", json={"items": roster.items})
    assert resp.status_code == 200, resp.text
    return name


@pytest.fixture
def index(gw: httpx.Client, roster: Roster) -> str:
    """A fresh index holding the roster: this test's playbooks affect only its searches."""
    return make_index(gw, roster)


def search(gw: httpx.Client, index: str, query_text: str, **fields: Any) -> dict[str, Any]:
    resp = gw.post("/v1/matrix/search", json={"query_text": query_text, "index": index, **fields})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def record(
    gw: httpx.Client, index: str, query_text: str, role: str, answer_id: str, score: float
) -> dict[str, Any]:
    body = {
        "query_text": query_text,
        "role": role,
        "answer_id": answer_id,
        "score": score,
        "index": index,
    }
    resp = gw.post("/v1/matrix/playbooks/record", json=body)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results}


def assert_envelope(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error", "trace_id"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["trace_id"]
    return body
