"""matrixd's domain (SPEC §5 matrixd): staffing search with playbook learning, and retrieve.

No FastAPI here. The hot path (`search`) is: one embedd call (skipped when the query's
embedding is in matrixd's LRU, `matrix.query_cache_size`); the organic vectord search and
the playbook lookup in one vectord request (`POST /v1/vectors/search`: both only need the query
vector); one `items/{id}` fetch per answer to inject (concurrently); the math in
numpy/float64. Every daemon call goes over the one pooled aiohttp session of the core
`HttpClient`; reporting to observerd is fire-and-forget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter

from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.contracts.matrix import (
    Evidence,
    EvidenceBundle,
    Playbook,
    PlaybookList,
    PlaybookRecorded,
    RecordPlaybookRequest,
    RetrieveRequest,
    SearchRequest,
)
from lakehouse_common.contracts.query import QueryClient
from lakehouse_common.contracts.vectors import Hit, IndexQuery, VectorClient, metadata_matches
from lakehouse_common.embed_cache import EmbeddingCache
from lakehouse_common.errors import InvalidInput, NotFound, UnprocessableEntity
from lakehouse_common.observer import Observer
from lakehouse_common.text import normalise
from lakehouse_common.tracing import current_trace_id
from services.matrixd.playbooks import Approval, PlaybookStore, strongest_per_answer
from services.matrixd.ranking import Candidate, Ranked, cosine_distances, rerank
from services.matrixd.sql_filter import check_sql_filter, evidence_sql

SEARCH_RUNS = "search_runs"
PLAYBOOK_RECORDS = "playbook_records"


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Await every call; raise the first failure (in argument order) once all have ended, so
    no call is left running or its error unretrieved."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class MatrixService:
    def __init__(
        self,
        settings: LakehouseSettings,
        *,
        embed: EmbedClient,
        vectors: VectorClient,
        query: QueryClient,
        observer: Observer,
        auditor: AccessAuditor,
        registry: CollectorRegistry,
    ) -> None:
        self.settings = settings.matrix
        self.auditor = auditor
        self.vector_max_k = settings.vector.max_k
        self.embed = embed
        self.vectors = vectors
        self.query = query
        self.observer = observer
        self.query_cache = EmbeddingCache(self.settings.query_cache_size)
        self.query_cache_lookups = Counter(
            "lakehouse_matrix_query_cache",
            "Query embeddings looked up in matrixd's cache, by result (hit: no embedd call)",
            ["result"],
            registry=registry,
        )
        self.playbooks = PlaybookStore(
            vectors,
            self.settings.playbook_index,
            fanout=self.settings.playbook_fanout,
        )

    # ----------------------------------------------------------------- helpers

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.settings.max_k:
            raise UnprocessableEntity(
                f"k={k} is outside 1..{self.settings.max_k} (matrix.max_k)",
                details={"field": "k", "limit": self.settings.max_k},
            )

    async def _embed(self, text: str) -> npt.NDArray[np.float32]:
        """The default model's embedding of `text`, from the cache when it is there."""
        cached = self.query_cache.get("", text)
        if cached is not None:
            self.query_cache_lookups.labels("hit").inc()
            return cached
        self.query_cache_lookups.labels("miss").inc()
        vector: npt.NDArray[np.float32] = (await self.embed.embed_array([text]))[0].copy()
        vector.flags.writeable = False  # shared by every later search of the same text
        self.query_cache.put("", text, vector)
        return vector

    # ----------------------------------------------------------------- search

    async def search(self, req: SearchRequest) -> list[Ranked]:
        """The final results, best first (the route writes them as a `SearchResponse`)."""
        started = time.perf_counter()
        self._check_k(req.k)
        role_norm = normalise(req.query_role) if req.query_role is not None else ""
        # embedd's float32 array goes to vectord as it is: vectord's parse checks it, once.
        query = await self._embed(req.query_text)
        organic_search = IndexQuery(
            index=req.index,
            vector=query,
            k=req.k,
            filter=req.filters,
            exclude_ids=req.exclude_ids,
        )
        approvals: dict[str, Approval] = {}
        injected: list[Candidate] = []
        if req.use_playbook and role_norm:
            # One vectord request for both searches (they only need the query vector).
            organic, recordings = await self.vectors.search_indexes(
                [organic_search, self.playbooks.lookup(query, role_norm, req.index)]
            )
            approvals = strongest_per_answer(
                recordings, self.settings.playbook_max_distance, excluded=req.exclude_ids
            )
            present = {hit.id for hit in organic}
            missing = [answer for answer in approvals if answer not in present]
            if missing:
                injected = await self._injectable(req.index, query, missing, req.filters)
        else:
            (organic,) = await self.vectors.search_indexes([organic_search])
        ranked = rerank(organic, injected, approvals, req.k)
        # Audit before disclosure (SPEC §8): the index's dataset (same name) decides.
        await self.auditor.record_if_governed(
            dataset=req.index,
            row_keys=[r.id for r in ranked],
            fields=sorted({key for r in ranked for key in r.metadata}),
            purpose="matching",
        )
        self._report_search(req, ranked, approvals, _ms(started))
        return ranked

    async def _injectable(
        self,
        index: str,
        query: npt.NDArray[np.float32],
        answers: Sequence[str],
        filters: dict[str, Any] | None,
    ) -> list[Candidate]:
        """The approved answers to inject: fetched from the index (one call each, concurrently;
        an answer deleted from the index since is skipped), kept when they pass `filters`,
        with their true distance to the query."""

        async def fetch(answer: str) -> tuple[str, list[float], dict[str, Any]] | None:
            try:
                item = await self.vectors.get_item(index, answer)
            except NotFound:
                return None
            return answer, item.vector, item.metadata

        fetched = [f for f in await _all(*(fetch(a) for a in answers)) if f is not None]
        kept = [f for f in fetched if metadata_matches(f[2], filters)]
        if not kept:
            return []
        distances = cosine_distances(query, [f[1] for f in kept])
        return [
            Candidate(answer, float(d), metadata)
            for (answer, _, metadata), d in zip(kept, distances, strict=True)
        ]

    def _report_search(
        self,
        req: SearchRequest,
        ranked: list[Ranked],
        approvals: dict[str, Approval],
        elapsed_ms: float,
    ) -> None:
        answered = {r.id for r in ranked}
        self.observer.report(
            SEARCH_RUNS,
            {
                "endpoint": "search",
                "query_text": req.query_text,
                "query_role": req.query_role,
                "index": req.index,
                "k": req.k,
                "use_playbook": req.use_playbook,
                "filters": req.filters,
                "exclude_ids": req.exclude_ids,
                "results": [
                    {
                        "id": r.id,
                        "distance": r.distance,
                        "boosted": r.boosted,
                        "injected": r.injected,
                    }
                    for r in ranked
                ],
                "boosted": sum(r.boosted for r in ranked),
                "injected": sum(r.injected for r in ranked),
                "playbooks_applied": sorted(
                    a.playbook_id for a in approvals.values() if a.answer_id in answered
                ),
                "elapsed_ms": elapsed_ms,
            },
        )

    # ----------------------------------------------------------------- playbooks

    async def record_playbook(self, req: RecordPlaybookRequest) -> PlaybookRecorded:
        """404 when `answer_id` is not an item of `index` (or `index` does not exist)."""
        query, _ = await _all(
            self._embed(req.query_text), self.vectors.get_item(req.index, req.answer_id)
        )
        playbook, updated = await self.playbooks.record(
            query_text=req.query_text,
            role=req.role,
            answer_id=req.answer_id,
            index=req.index,
            score=req.score,
            query_vector=query,
            trace_id=current_trace_id.get(),
        )
        self.observer.report(
            PLAYBOOK_RECORDS,
            {**playbook.model_dump(exclude={"trace_id"}), "updated": updated},
        )
        return PlaybookRecorded(playbook_id=playbook.playbook_id, updated=updated)

    async def get_playbook(self, playbook_id: str) -> Playbook:
        return await self.playbooks.get(playbook_id)

    async def delete_playbook(self, playbook_id: str) -> None:
        await self.playbooks.delete(playbook_id)

    async def list_playbooks(
        self, *, role: str | None, index: str | None, limit: int
    ) -> PlaybookList:
        playbooks, truncated = await self.playbooks.list(role=role, index=index, limit=limit)
        return PlaybookList(playbooks=playbooks, count=len(playbooks), truncated=truncated)

    # ----------------------------------------------------------------- retrieve

    async def retrieve(self, req: RetrieveRequest) -> EvidenceBundle:
        """Semantic candidates (`k × retrieve_overfetch`, capped), narrowed by `sql_filter` in
        queryd, in distance order, cut to `k`, each with its full dataset row."""
        started = time.perf_counter()
        self._check_k(req.k)
        condition = (
            check_sql_filter(req.sql_filter, self.settings.max_sql_filter_chars)
            if req.sql_filter is not None
            else None
        )
        dataset = req.dataset or req.index
        if not dataset.isidentifier() or not dataset.isascii():
            raise InvalidInput(
                f"index {req.index!r} is not a dataset name: give `dataset` explicitly",
                details={"index": req.index},
            )
        query = await self._embed(req.query_text)
        n = min(
            req.k * self.settings.retrieve_overfetch,
            self.settings.retrieve_max_candidates,
            self.vector_max_k,
        )
        hits: list[Hit] = await self.vectors.search(req.index, query, max(n, req.k))
        rows: dict[str, dict[str, Any]] = {}
        if hits:
            ids = [hit.id for hit in hits]
            answer = await self.query.query(evidence_sql(dataset, condition), [ids], limit=len(ids))
            names = [c.name for c in answer.columns]
            for values in answer.rows:
                row = dict(zip(names, values, strict=True))
                rows.setdefault(str(row.get("id")), row)
        results: list[Evidence] = []
        for hit in hits:
            found = rows.get(hit.id)
            if found is not None:
                results.append(
                    Evidence(rank=len(results), id=hit.id, distance=hit.distance, row=found)
                )
                if len(results) == req.k:
                    break
        await self.auditor.record_if_governed(
            dataset=dataset,
            row_keys=[e.id for e in results],
            fields=sorted({key for e in results for key in e.row}),
            purpose="matching",
        )
        bundle = EvidenceBundle(
            query_text=req.query_text,
            query_role=req.query_role,
            results=results,
            sql_filter=condition,
            trace_id=current_trace_id.get(),
            index=req.index,
            dataset=dataset,
            candidates=len(hits),
        )
        self.observer.report(
            SEARCH_RUNS,
            {
                "endpoint": "retrieve",
                "query_text": req.query_text,
                "query_role": req.query_role,
                "index": req.index,
                "dataset": dataset,
                "k": req.k,
                "sql_filter": condition,
                "candidates": len(hits),
                "results": [{"id": e.id, "distance": e.distance} for e in results],
                "elapsed_ms": _ms(started),
            },
        )
        return bundle
