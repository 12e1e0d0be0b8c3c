"""pathwayd's domain: the pathway log, its in-memory index, and next-step advice (SPEC §5).

Pathways are appended to `<data_dir>/pathways/pathways.jsonl` (one `pathway.v1` record a line,
group-committed and fsync'd before the answer; a torn tail is repaired on start) and indexed in
memory: by id, and by normalised role for the role gate. The log is read back at start.

Embeddings of demand texts are not stored: recording a pathway never depends on embedd. They
are computed when a `suggest` first needs them (one batched embedd call for the role's pathways
not yet embedded) and kept in memory, keyed by pathway id.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from lakehouse_common.appendlog import AppendLog
from lakehouse_common.clock import format_rfc3339_nanos
from lakehouse_common.config import PathwaySettings
from lakehouse_common.contracts.pathways import (
    SCHEMA,
    PathwayIn,
    PathwayRecord,
    SimilarPathway,
    StepAdvice,
    SuggestRequest,
    SuggestResponse,
)
from lakehouse_common.errors import Conflict, InvalidInput, NotFound, UnprocessableEntity
from lakehouse_common.logging import get_logger
from lakehouse_common.text import normalise

log = get_logger("lakehouse.pathwayd")

Vectors = npt.NDArray[np.float32]
# texts → one unit vector per text, as a (len(texts), dim) array.
EmbedFn = Callable[[list[str]], Awaitable[Vectors]]


def mint_pathway_id() -> str:
    return f"pw-{secrets.token_hex(8)}"


def _content(pathway: PathwayIn) -> dict[str, Any]:
    """What identifies a posted pathway for the idempotent-retry check."""
    return pathway.model_dump(mode="json", exclude={"pathway_id"})


def _record_content(record: PathwayRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", include={"demand_text", "role", "steps", "outcome"})


@dataclass
class _Entry:
    record: PathwayRecord
    role_key: str
    step_names: tuple[str, ...]


class PathwayStore:
    def __init__(
        self, directory: Path, settings: PathwaySettings, embed: EmbedFn, embed_batch: int
    ) -> None:
        self.settings = settings
        self.log = AppendLog(directory / "pathways.jsonl")
        self.embed = embed
        self.embed_batch = embed_batch
        self.entries: dict[str, _Entry] = {}
        # Newest last; the list endpoint reverses it.
        self.order: list[str] = []
        self.by_role: dict[str, list[str]] = {}
        self.vectors: dict[str, Vectors] = {}
        # Ids being written: a concurrent post of the same id waits for the verdict of the first.
        self._pending: dict[str, dict[str, Any]] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Repair the log's tail and rebuild the index from it (blocking)."""
        self.log.open()
        for n, line in enumerate(self.log.iter_lines()):
            try:
                raw = orjson.loads(line)
                raw.pop("schema", None)
                record = PathwayRecord.model_validate(raw)
            except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
                log.warning("unreadable pathway record skipped", line=n, error=str(exc))
                continue
            self._index(record)
        log.info("pathways loaded", count=len(self.entries))

    async def start(self) -> None:
        await self.log.start()

    async def close(self) -> None:
        await self.log.close()

    def _index(self, record: PathwayRecord) -> None:
        key = normalise(record.role)
        if record.pathway_id in self.entries:
            return
        self.entries[record.pathway_id] = _Entry(
            record, key, tuple(step.name for step in record.steps)
        )
        self.order.append(record.pathway_id)
        self.by_role.setdefault(key, []).append(record.pathway_id)

    # -- record / get / list --------------------------------------------------------------------

    async def record(self, pathway: PathwayIn, trace_id: str) -> tuple[PathwayRecord, bool]:
        """Store `pathway`; (record, created). A known id with the same content is an
        idempotent retry (not created); with other content a 409."""
        content = _content(pathway)
        pathway_id = pathway.pathway_id or mint_pathway_id()
        existing = self.entries.get(pathway_id)
        if existing is not None:
            if _record_content(existing.record) == content:
                return existing.record, False
            raise Conflict(
                f"pathway {pathway_id!r} exists with other content",
                details={"pathway_id": pathway_id},
            )
        if pathway_id in self._pending:
            raise Conflict(
                f"pathway {pathway_id!r} is being recorded by another request",
                details={"pathway_id": pathway_id},
            )
        record = PathwayRecord(
            pathway_id=pathway_id,
            demand_text=pathway.demand_text,
            role=pathway.role,
            steps=pathway.steps,
            outcome=pathway.outcome,
            recorded_at=format_rfc3339_nanos(time.time_ns()),
            trace_id=trace_id,
        )
        line = orjson.dumps({"schema": SCHEMA, **record.model_dump(mode="json")}) + b"\n"
        self._pending[pathway_id] = content
        try:
            await self.log.append([line])
        finally:
            del self._pending[pathway_id]
        self._index(record)
        return record, True

    def get(self, pathway_id: str) -> PathwayRecord:
        entry = self.entries.get(pathway_id)
        if entry is None:
            raise NotFound(f"no pathway {pathway_id!r}", details={"pathway_id": pathway_id})
        return entry.record

    def list_pathways(self, role: str | None, limit: int) -> tuple[list[PathwayRecord], int]:
        """Newest first; (page, total matching)."""
        if limit > self.settings.max_list:
            raise InvalidInput(
                f"limit={limit} exceeds pathway.max_list ({self.settings.max_list})",
                details={"limit": limit, "max": self.settings.max_list},
            )
        ids = self.order if role is None else self.by_role.get(normalise(role), [])
        page = [self.entries[i].record for i in reversed(ids[-limit:])] if limit else []
        return page, len(ids)

    # -- suggest --------------------------------------------------------------------------------

    async def _vectors_for(self, ids: Sequence[str]) -> Vectors:
        missing = [i for i in ids if i not in self.vectors]
        for start in range(0, len(missing), self.embed_batch):
            chunk = missing[start : start + self.embed_batch]
            got = await self.embed([self.entries[i].record.demand_text for i in chunk])
            for pathway_id, vector in zip(chunk, got, strict=True):
                self.vectors[pathway_id] = vector
        return np.stack([self.vectors[i] for i in ids])

    async def suggest(self, request: SuggestRequest) -> SuggestResponse:
        k = request.k if request.k is not None else self.settings.default_k
        if k > self.settings.max_k:
            raise UnprocessableEntity(
                f"k={k} exceeds pathway.max_k ({self.settings.max_k})",
                details={"k": k, "max": self.settings.max_k},
            )
        ids = list(self.by_role.get(normalise(request.role), []))
        similar: list[tuple[float, str]] = []
        if ids:
            query = await self.embed([request.demand_text])
            matrix = await self._vectors_for(ids)
            scores = matrix @ query[0]
            ranked = sorted(
                ((float(score), pathway_id) for score, pathway_id in zip(scores, ids, strict=True)),
                key=lambda pair: (-pair[0], pair[1]),
            )
            similar = [pair for pair in ranked if pair[0] >= self.settings.min_similarity]
        neighbourhood = similar[: max(k, self.settings.neighbors)]
        candidates, matched = self._tally(
            [self.entries[i] for _, i in neighbourhood], request.steps_taken
        )
        return SuggestResponse(
            role=request.role,
            steps_taken=request.steps_taken,
            pathways=[
                SimilarPathway(similarity=score, pathway=self.entries[i].record)
                for score, i in similar[:k]
            ],
            next_step=candidates[0] if candidates else None,
            candidates=candidates,
            considered=len(neighbourhood),
            matched=matched,
        )

    @staticmethod
    def _tally(entries: Sequence[_Entry], taken: Sequence[str]) -> tuple[list[StepAdvice], int]:
        """Per next step after the prefix `taken`: how many pathways went on with it and how
        many of those were filled. Best first: fill rate, then evidence, then name."""
        prefix = tuple(taken)
        counts: dict[str, list[int]] = {}
        matched = 0
        for entry in entries:
            names = entry.step_names
            if len(names) <= len(prefix) or names[: len(prefix)] != prefix:
                continue
            matched += 1
            tally = counts.setdefault(names[len(prefix)], [0, 0])
            tally[1] += 1
            if entry.record.outcome.filled:
                tally[0] += 1
        advice = [
            StepAdvice(step=step, fill_rate=filled / total, filled=filled, total=total)
            for step, (filled, total) in counts.items()
        ]
        advice.sort(key=lambda a: (-a.fill_rate, -a.total, a.step))
        return advice, matched
