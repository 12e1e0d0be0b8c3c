"""Playbooks (SPEC §5 matrixd): approved answers recorded per (query, role) and the boost math.

A recording lives in a vectord index (`matrix.playbook_index`, cosine): its vector is the
embedding of the recorded query, its metadata the record (`query_text`, `role`, `role_norm`,
`answer_id`, `index`, `score`, `recorded_at`, `trace_id`). vectord acknowledges an add only once
it is in its fsync'd write-ahead log, so a recording that was answered survives `kill -9` and a
stack restart, and needs no second store.

At search time one vectord search over that index (sent in the same request as the organic
search, `POST /v1/vectors/search`) — the query's vector, `filter={"role_norm",
"index"}` (the role gate is a filter, so another role's recordings are never even fetched),
`k = matrix.playbook_fanout` — gives the same-role recordings nearest the query; those within
`matrix.playbook_max_distance` approve their answers, the strongest recording per answer once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from lakehouse_common.contracts.matrix import (
    PLAYBOOK_ID,
    Playbook,
    playbook_id,
)
from lakehouse_common.contracts.vectors import (
    MAX_LIST_LIMIT,
    Hit,
    IndexQuery,
    ListedItem,
    VectorClient,
)
from lakehouse_common.errors import NotFound
from lakehouse_common.logging import get_logger
from lakehouse_common.text import normalise

# SPEC §5: `distance × (1 − 0.5 × score)`; score 1.0 halves the distance.
BOOST_WEIGHT = 0.5

log = get_logger("lakehouse.matrixd.playbooks")


def boost_factor(score: float) -> float:
    """The factor a recording with `score` (in [0, 1]) multiplies its answer's distance by."""
    return 1.0 - BOOST_WEIGHT * score


@dataclass(frozen=True)
class Approval:
    """The strongest close recording of one answer: it applies once, with its score."""

    answer_id: str
    score: float
    playbook_id: str
    query_distance: float

    @property
    def factor(self) -> float:
        return boost_factor(self.score)


def strongest_per_answer(
    recordings: Iterable[Hit], max_distance: float, excluded: Iterable[str] = ()
) -> dict[str, Approval]:
    """answer id → its strongest recording among those within `max_distance` of the query.

    Ties on score go to the recording whose query is nearer, then to the smaller playbook id,
    so the choice never depends on vectord's order. Answers in `excluded` get no approval.
    A recording whose metadata is not a playbook record (written there by hand) is skipped.
    """
    skip = set(excluded)
    best: dict[str, Approval] = {}
    for hit in recordings:
        if not hit.distance <= max_distance:
            continue
        answer = hit.metadata.get("answer_id")
        score = hit.metadata.get("score")
        if not isinstance(answer, str) or answer in skip:
            continue
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            continue
        candidate = Approval(answer, float(score), hit.id, hit.distance)
        current = best.get(answer)
        if current is None or _stronger(candidate, current):
            best[answer] = candidate
    return best


def _stronger(a: Approval, b: Approval) -> bool:
    return (-a.score, a.query_distance, a.playbook_id) < (-b.score, b.query_distance, b.playbook_id)


def playbook_of(item_id: str, metadata: dict[str, Any]) -> Playbook | None:
    try:
        return Playbook.model_validate({**metadata, "playbook_id": item_id})
    except ValidationError:
        return None


class PlaybookStore:
    """The playbook index in vectord: record, look up, list, delete."""

    def __init__(
        self,
        vectors: VectorClient,
        index_name: str,
        *,
        fanout: int,
        page_size: int = MAX_LIST_LIMIT,
    ) -> None:
        self.vectors = vectors
        self.index_name = index_name
        self.fanout = fanout
        self.page_size = page_size  # of the item listing `list` reads
        self._ready_dim: int | None = None

    async def ensure_index(self, dim: int) -> None:
        """Create the playbook index on first use (cosine, the embedding's dimension).

        An index of another dimension (the embedding model changed) answers vectord's 409.
        """
        if self._ready_dim != dim:
            await self.vectors.create_index(self.index_name, dim, "cosine")
            self._ready_dim = dim

    async def record(
        self,
        *,
        query_text: str,
        role: str,
        answer_id: str,
        index: str,
        score: float,
        query_vector: npt.NDArray[np.float32],
        trace_id: str,
    ) -> tuple[Playbook, bool]:
        """Upsert the recording; answer it and whether it replaced an existing one."""
        pid = playbook_id(query_text, role, answer_id, index)
        playbook = Playbook(
            playbook_id=pid,
            query_text=query_text,
            role=role,
            role_norm=normalise(role),
            answer_id=answer_id,
            index=index,
            score=score,
            recorded_at=datetime.now(UTC).isoformat(),
            trace_id=trace_id,
        )
        item = {
            "id": pid,
            "vector": query_vector.tolist(),
            "metadata": playbook.model_dump(exclude={"playbook_id"}),
        }
        await self.ensure_index(int(query_vector.shape[0]))
        try:
            added = await self.vectors.add(self.index_name, [item])
        except NotFound:
            # The index was deleted behind our back (an operator's reset): make it again.
            self._ready_dim = None
            await self.ensure_index(int(query_vector.shape[0]))
            added = await self.vectors.add(self.index_name, [item])
        return playbook, added.updated > 0

    def lookup(
        self, query_vector: npt.NDArray[np.float32], role_norm: str, index: str
    ) -> IndexQuery:
        """The search for the same-role recordings for `index` nearest the query, to run beside
        the organic one in a single vectord request (no index yet answers no recordings)."""
        return IndexQuery(
            index=self.index_name,
            vector=query_vector,
            k=self.fanout,
            filter={"role_norm": role_norm, "index": index},
            missing_ok=True,
        )

    async def get(self, pid: str) -> Playbook:
        if not PLAYBOOK_ID.fullmatch(pid):
            raise NotFound(f"no playbook {pid!r}", details={"playbook_id": pid})
        try:
            item = await self.vectors.get_item(self.index_name, pid)
        except NotFound:
            raise NotFound(f"no playbook {pid!r}", details={"playbook_id": pid}) from None
        playbook = playbook_of(pid, item.metadata)
        if playbook is None:
            raise NotFound(f"{pid!r} is not a playbook record", details={"playbook_id": pid})
        return playbook

    async def delete(self, pid: str) -> None:
        if not PLAYBOOK_ID.fullmatch(pid):
            raise NotFound(f"no playbook {pid!r}", details={"playbook_id": pid})
        try:
            answer = await self.vectors.delete(self.index_name, [pid])
        except NotFound:
            answer = None
        if answer is None or pid not in answer.deleted:
            raise NotFound(f"no playbook {pid!r}", details={"playbook_id": pid})

    async def list(
        self, *, role: str | None, index: str | None, limit: int
    ) -> tuple[list[Playbook], bool]:
        """Recordings (of `role`, for `index` when given), newest first; and whether more
        matched than `limit`. Every match is read (vectord's item listing, page by page) so
        "newest first" holds whatever their number."""
        wanted: dict[str, Any] = {}
        if role is not None:
            wanted["role_norm"] = normalise(role)
        if index is not None:
            wanted["index"] = index
        listed: list[ListedItem] = []
        after: str | None = None
        while True:
            try:
                page = await self.vectors.list_items(
                    self.index_name, after=after, limit=self.page_size, filter=wanted or None
                )
            except NotFound:
                return [], False  # no playbook recorded yet
            listed += page.items
            if page.next is None:
                break
            after = page.next
        playbooks = _valid(listed)
        playbooks.sort(key=lambda p: (p.recorded_at, p.playbook_id), reverse=True)
        return playbooks[:limit], len(playbooks) > limit


def _valid(items: Sequence[ListedItem]) -> list[Playbook]:
    out = []
    for item in items:
        playbook = playbook_of(item.id, item.metadata)
        if playbook is None:
            log.warning("not a playbook record in the playbook index", id=item.id)
        else:
            out.append(playbook)
    return out
