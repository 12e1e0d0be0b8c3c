"""One real vectord (+ gateway) shared by the package's API tests, and helpers.

Settings are small on purpose: `exact_threshold` 30 so small indexes take the exact path and
slightly larger ones HNSW; `initial_capacity` 16 so growth happens within a few adds;
`snapshot_every_ops` 20 so background snapshots run while tests write.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.stack import LiveStack

EXACT_THRESHOLD = 30
INITIAL_CAPACITY = 16
MAX_K = 100

VECTOR_CONFIG: dict[str, Any] = {
    "exact_threshold": EXACT_THRESHOLD,
    "initial_capacity": INITIAL_CAPACITY,
    "max_k": MAX_K,
    # Snapshots run often, so they also race the API and concurrency tests' writes.
    "snapshot_every_ops": 20,
}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("vectord"), {"vector": VECTOR_CONFIG})
    with live.running("vectord", "gateway"):
        yield live


@pytest.fixture
def vd(stack: LiveStack) -> Iterator[httpx.Client]:
    """A client straight to vectord."""
    with stack.client("vectord") as client:
        yield client


def index_name(prefix: str = "ix") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def make_items(
    ids: list[str], vectors: np.ndarray, metadata: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    return [
        {"id": i, "vector": v.tolist(), "metadata": (metadata[n] if metadata else {"n": n})}
        for n, (i, v) in enumerate(zip(ids, vectors, strict=True))
    ]


def assert_envelope(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["error"]["code"] == code, body
    assert body["trace_id"]
    return body
