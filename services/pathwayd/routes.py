"""pathwayd routes (SPEC §5): record, get and list pathways; suggest the next step."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from lakehouse_common.app import JsonResponse
from lakehouse_common.contracts.pathways import (
    PathwayIn,
    PathwayList,
    PathwayRecord,
    SuggestRequest,
    SuggestResponse,
)
from lakehouse_common.observer import Observer
from lakehouse_common.tracing import current_trace_id
from services.pathwayd.service import PathwayStore
from services.pathwayd.state import pathway_observer, pathway_store

DEFAULT_LIST_LIMIT = 100

router = APIRouter(prefix="/v1/pathways", tags=["pathways"])


@router.post(
    "",
    response_model=PathwayRecord,
    status_code=201,
    summary="Record a pathway (201; 200 for an identical retry of a known id, 409 otherwise).",
    responses={200: {"model": PathwayRecord, "description": "identical retry of a known id"}},
)
async def record_pathway(
    store: Annotated[PathwayStore, Depends(pathway_store)],
    observer: Annotated[Observer, Depends(pathway_observer)],
    body: PathwayIn,
) -> Response:
    """Durable (fsync'd) before the answer; reported to observerd's `pathways` stream."""
    record, created = await store.record(body, current_trace_id.get())
    data = record.model_dump(mode="json")
    if created:
        observer.report("pathways", data)
    return JsonResponse(data, status_code=201 if created else 200)


@router.get(
    "",
    response_model=PathwayList,
    summary="Pathways, newest first, optionally of one role (case/whitespace-insensitive).",
)
async def list_pathways(
    store: Annotated[PathwayStore, Depends(pathway_store)],
    role: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=0, description="most pathways; default 100")] = None,
) -> PathwayList:
    """`total` counts every matching pathway; `count` those in this answer. 400 for a `limit`
    over `pathway.max_list`."""
    if limit is None:
        limit = min(DEFAULT_LIST_LIMIT, store.settings.max_list)
    page, total = store.list_pathways(role, limit)
    return PathwayList(pathways=page, count=len(page), total=total)


@router.post(
    "/suggest",
    response_model=SuggestResponse,
    summary="Most similar past pathways of the role, and the next step with the best fill rate.",
)
async def suggest_pathway(
    store: Annotated[PathwayStore, Depends(pathway_store)], body: SuggestRequest
) -> SuggestResponse:
    """Similarity is the cosine of the demand texts' embeddings (embedd); only pathways of the
    same role are considered. `next_step` follows `steps_taken` (may be empty)."""
    return await store.suggest(body)


@router.get(
    "/{pathway_id}",
    response_model=PathwayRecord,
    summary="One pathway by id.",
)
async def get_pathway(
    store: Annotated[PathwayStore, Depends(pathway_store)], pathway_id: str
) -> PathwayRecord:
    """404 when there is no such pathway."""
    return store.get(pathway_id)
