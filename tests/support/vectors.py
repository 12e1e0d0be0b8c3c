"""Helpers for vectord's tests: the package stack's settings, index names, unit rows, items."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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


@dataclass
class Item:
    id: str
    vector: Any
    metadata: dict[str, Any] = field(default_factory=dict)
