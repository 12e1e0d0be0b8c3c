"""Re-ranking a search with its playbook approvals (SPEC §5 matrixd): the exact math.

- An organic result with an approval: `distance × (1 − 0.5·score)`, `boosted`.
- An approved answer missing from the organic results: its true cosine distance to the query
  (computed here in float64 from the stored vector), then boosted; `injected` and `boosted`.
- Re-ranked by adjusted distance and cut to `k`, but an injected answer is never cut: injected
  answers (the best `k` of them, should more qualify) take their places first and the organic
  results fill what is left, so each one displaces the worst organic result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lakehouse_common.contracts.vectors import Hit
from services.matrixd.playbooks import Approval


@dataclass(frozen=True, slots=True)
class Ranked:
    """One final result of a search, best first; the route writes it as a `SearchResult`."""

    id: str
    distance: float
    boosted: bool
    injected: bool
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An approved answer fetched from the index to be injected."""

    id: str
    distance: float  # its true (unboosted) distance to the query
    metadata: dict[str, Any]


def cosine_distances(
    query: npt.NDArray[np.floating[Any]], vectors: Sequence[Sequence[float]]
) -> npt.NDArray[np.float64]:
    """`1 − cos` between the query and each vector, in float64 (both sides re-normalised, so
    float32 rounding of the stored unit vectors does not leak into the distance)."""
    q = np.asarray(query, dtype=np.float64)
    q = q / np.linalg.norm(q)
    m = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), q.shape[0])
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = 1.0 - m @ q
    return out


def _key(r: Ranked) -> tuple[float, str]:
    return (r.distance, r.id)


def rerank(
    organic: Sequence[Hit],
    injected: Sequence[Candidate],
    approvals: Mapping[str, Approval],
    k: int,
) -> list[Ranked]:
    """The final results, best first (ties broken by id, so the order is deterministic)."""
    boosted_organic = []
    for hit in organic:
        approval = approvals.get(hit.id)
        if approval is None:
            boosted_organic.append(Ranked(hit.id, hit.distance, False, False, hit.metadata))
        else:
            distance = hit.distance * approval.factor
            boosted_organic.append(Ranked(hit.id, distance, True, False, hit.metadata))
    added = [
        Ranked(c.id, c.distance * approvals[c.id].factor, True, True, c.metadata) for c in injected
    ]
    added.sort(key=_key)
    added = added[:k]
    boosted_organic.sort(key=_key)
    kept = boosted_organic[: k - len(added)]
    return sorted(added + kept, key=_key)
