"""Helpers for matrixd's tests: the demo roster, index, search and record calls over the gateway."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

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


def embed(gw: httpx.Client, *texts: str) -> list[list[float]]:
    resp = gw.post("/v1/embed", json={"texts": list(texts)})
    assert resp.status_code == 200, resp.text
    vectors: list[list[float]] = resp.json()["vectors"]
    return vectors


def make_index(gw: httpx.Client, roster: Roster) -> str:
    name = f"t-{secrets.token_hex(4)}"
    resp = gw.put(f"/v1/vectors/indexes/{name}", json={"dim": 384, "space": "cosine"})
    assert resp.status_code == 201, resp.text
    resp = gw.post(f"/v1/vectors/indexes/{name}/add", json={"items": roster.items})
    assert resp.status_code == 200, resp.text
    return name


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
