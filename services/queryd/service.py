"""queryd's request flow (SPEC §4): limits, fresh views, a query slot, the engine, the encoding.

1. `limit` defaults to `query.default_row_limit`; above `query.max_row_limit` is a 422. The time
   limit is `query.timeout_s`, lowered (never raised) by the request's `timeout_s`; it counts
   from the request's arrival, so waiting for a slot uses it up too.
2. The views are refreshed when they are older than `query.catalog_refresh_s`.
3. At most `query.threads` queries run at once (one DuckDB cursor each, in worker threads so
   the event loop never blocks); a query that gets no slot before its time limit is a 503.
4. A query naming an unknown view triggers one refresh that lists the catalog after the failure
   and runs again, so a version committed a moment ago is found without waiting for the
   interval.
5. Governance (SPEC §8, issue 7; `governance.py`): when the answer carries PII of a governed
   dataset, the subjects of its rows are audited through catalogd — one call per dataset, with
   `purpose: "query"` and the request's trace id — and only then is the answer returned. If the
   audit cannot be written, the answer is 503 naming catalogd (`audit.fail_closed`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import QuerySettings
from lakehouse_common.contracts.query import (
    ARROW_MEDIA_TYPE,
    CSV_MEDIA_TYPE,
    ELAPSED_HEADER,
    ROW_COUNT_HEADER,
    TRUNCATED_HEADER,
    QueryFormat,
    QueryRequest,
)
from lakehouse_common.contracts.subjects import DatasetPolicy
from lakehouse_common.errors import ServiceUnavailable, UnprocessableEntity
from services.queryd.engine import QueryEngine, UnknownRelation
from services.queryd.governance import Disclosure, GovernanceSnapshot, iter_disclosed
from services.queryd.results import encode_arrow, encode_csv, encode_json
from services.queryd.views import LakeViews

# The longest a query waits for a view refresh in flight before running on the current views
# (a slow catalogd must not eat a query's whole time limit).
REFRESH_WAIT_S = 2.0


@dataclass(frozen=True)
class QueryAnswer:
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    # The governed PII this answer carries: audited before it is returned.
    disclosures: tuple[Disclosure, ...] = ()


class QueryService:
    """What `POST /v1/query` does, without HTTP."""

    def __init__(
        self,
        settings: QuerySettings,
        engine: QueryEngine,
        views: LakeViews,
        auditor: AccessAuditor | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.views = views
        # None: no governance (unit tests of the query flow alone).
        self.auditor = auditor
        self._slots = asyncio.Semaphore(settings.threads)
        self._snapshot: tuple[object, object, GovernanceSnapshot] | None = None

    def row_limit(self, requested: int | None) -> int:
        if requested is None:
            return self.settings.default_row_limit
        if requested > self.settings.max_row_limit:
            raise UnprocessableEntity(
                f"limit {requested} is above query.max_row_limit ({self.settings.max_row_limit})",
                details={"limit": requested, "max_row_limit": self.settings.max_row_limit},
            )
        return requested

    def time_limit(self, requested: float | None) -> float:
        if requested is None:
            return self.settings.timeout_s
        return min(requested, self.settings.timeout_s)

    async def run(self, request: QueryRequest) -> QueryAnswer:
        started = time.perf_counter()
        limit = self.row_limit(request.limit)
        time_limit_s = self.time_limit(request.timeout_s)
        deadline = started + time_limit_s
        await self.views.ensure_fresh(wait_s=min(REFRESH_WAIT_S, time_limit_s / 2))
        retried = False
        while True:
            attempt_at = time.monotonic()
            try:
                governance = await self._governance()
                answer = await self._run_in_slot(
                    request, limit, deadline, time_limit_s, started, governance
                )
            except UnknownRelation:
                if retried:
                    raise
                retried = True
                remaining = deadline - time.perf_counter()
                await self.views.ensure_fresh(
                    wait_s=min(REFRESH_WAIT_S, remaining / 2), newer_than=attempt_at
                )
                continue
            await self._audit(answer.disclosures)
            return answer

    async def _governance(self) -> GovernanceSnapshot | None:
        """The governed views now (rebuilt only when the views or the policy changed)."""
        if self.auditor is None:
            return None
        views = self.views.views
        try:
            policies: Mapping[str, DatasetPolicy] = await self.auditor.policies()
            unknown = None
        except ServiceUnavailable as exc:
            policies, unknown = {}, exc
        cached = self._snapshot
        if cached is not None and cached[0] is views and cached[1] is policies and not unknown:
            return cached[2]
        snapshot = GovernanceSnapshot.build(views, policies, unknown)
        if unknown is None:
            self._snapshot = (views, policies, snapshot)
        return snapshot

    async def _audit(self, disclosures: tuple[Disclosure, ...]) -> None:
        """Audit before disclosure: every governed row of the answer, one call per dataset."""
        if self.auditor is None:
            return
        auditor = self.auditor
        await asyncio.gather(
            *(
                auditor.record(
                    dataset=d.dataset, row_keys=d.row_keys, purpose="query", fields=d.fields
                )
                for d in iter_disclosed(disclosures)
            )
        )

    async def _run_in_slot(
        self,
        request: QueryRequest,
        limit: int,
        deadline: float,
        time_limit_s: float,
        started: float,
        governance: GovernanceSnapshot | None,
    ) -> QueryAnswer:
        try:
            async with asyncio.timeout(max(deadline - time.perf_counter(), 0.0)):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceUnavailable(
                f"all {self.settings.threads} query slots stayed busy for {time_limit_s:g}s",
                details={"slots": self.settings.threads, "timeout_s": time_limit_s},
            ) from None
        try:
            return await run_in_threadpool(
                self._execute, request, limit, deadline, time_limit_s, started, governance
            )
        finally:
            self._slots.release()

    def _execute(
        self,
        request: QueryRequest,
        limit: int,
        deadline: float,
        time_limit_s: float,
        started: float,
        governance: GovernanceSnapshot | None,
    ) -> QueryAnswer:
        """The engine, what the answer discloses, and the encoding, in one worker thread."""
        result = self.engine.execute(
            request.sql,
            list(request.params),
            limit=limit,
            deadline=deadline,
            time_limit_s=time_limit_s,
        )
        disclosures = (
            ()
            if governance is None
            else governance.disclosures(result.tree, result.columns, result.table)
        )
        if request.format is QueryFormat.JSON:
            elapsed = _elapsed_ms(started)
            body = encode_json(result.columns, result.table, result.truncated, elapsed)
            return QueryAnswer(body, "application/json", disclosures=disclosures)
        if request.format is QueryFormat.CSV:
            body, media_type = encode_csv(result.table), f"{CSV_MEDIA_TYPE}; charset=utf-8"
        else:
            body, media_type = encode_arrow(result.table), ARROW_MEDIA_TYPE
        headers = {
            ROW_COUNT_HEADER: str(result.table.num_rows),
            TRUNCATED_HEADER: "true" if result.truncated else "false",
            ELAPSED_HEADER: f"{_elapsed_ms(started):.3f}",
        }
        return QueryAnswer(body, media_type, headers, disclosures)

    async def list_views(self) -> list[Any]:
        await self.views.ensure_fresh(wait_s=REFRESH_WAIT_S)
        return sorted(self.views.views.values(), key=lambda view: view.name)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
