"""matrixd routes (SPEC §5 matrixd): search, playbooks, retrieve."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from lakehouse_common.app import JsonResponse
from lakehouse_common.contracts.matrix import (
    EvidenceBundle,
    Playbook,
    PlaybookDeleted,
    PlaybookList,
    PlaybookRecorded,
    RecordPlaybookRequest,
    RetrieveRequest,
    SearchRequest,
    SearchResponse,
)
from services.matrixd.ranking import Ranked
from services.matrixd.service import MatrixService
from services.matrixd.state import matrix_service

router = APIRouter(prefix="/v1/matrix", tags=["matrix"])


def search_answer(ranked: list[Ranked]) -> dict[str, Any]:
    """The `SearchResponse` of ranked results, built once as the JSON it is written as (a
    returned model would be validated again by FastAPI before being serialised)."""
    return {
        "results": [
            {
                "rank": rank,
                "id": r.id,
                "distance": r.distance,
                "boosted": r.boosted,
                "injected": r.injected,
                "metadata": r.metadata,
            }
            for rank, r in enumerate(ranked)
        ],
        "boosted": sum(r.boosted for r in ranked),
        "injected": sum(r.injected for r in ranked),
    }


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Staffing search: k-NN over an index, then same-role playbooks (boost, inject).",
)
async def search_workers(
    body: SearchRequest, matrix: Annotated[MatrixService, Depends(matrix_service)]
) -> Response:
    """Embeds `query_text`, searches `index` (`exclude_ids` and `filters` applied inside
    vectord); with `use_playbook` and a `query_role`, recordings for that role on close
    queries multiply their answer's distance by `1 − 0.5·score` and inject approved answers
    missing from the organic results. 422: empty query, k outside 1..`matrix.max_k`; 404:
    unknown index; 502: embedd or vectord unreachable."""
    return JsonResponse(search_answer(await matrix.search(body)))


@router.post(
    "/playbooks/record",
    response_model=PlaybookRecorded,
    summary="Record an approved answer for a query and role (re-recording updates it).",
)
async def record_playbook(
    body: RecordPlaybookRequest, matrix: Annotated[MatrixService, Depends(matrix_service)]
) -> PlaybookRecorded:
    """The id is `pb-` + 16 hex of sha256(normalised query, normalised role, answer, index).
    Acknowledged once vectord has the recording in its write-ahead log. 404: `answer_id` is
    not in `index`; 422: score outside [0, 1], blank query, role or answer."""
    return await matrix.record_playbook(body)


@router.get(
    "/playbooks",
    response_model=PlaybookList,
    summary="Recorded playbooks, newest first, optionally of one role and index.",
)
async def list_playbooks(
    matrix: Annotated[MatrixService, Depends(matrix_service)],
    role: str | None = Query(default=None, max_length=200, description="compared normalised"),
    index: str | None = Query(default=None, max_length=63),
    limit: int = Query(default=100, ge=1, le=1000),
) -> PlaybookList:
    """`truncated` is set when more recordings matched than were answered."""
    return await matrix.list_playbooks(role=role, index=index, limit=limit)


@router.get("/playbooks/{playbook_id}", response_model=Playbook, summary="One playbook recording.")
async def get_playbook(
    playbook_id: str, matrix: Annotated[MatrixService, Depends(matrix_service)]
) -> Playbook:
    """404 when there is no such playbook."""
    return await matrix.get_playbook(playbook_id)


@router.delete(
    "/playbooks/{playbook_id}",
    response_model=PlaybookDeleted,
    summary="Delete a playbook recording: it stops influencing searches at once.",
)
async def delete_playbook(
    playbook_id: str, matrix: Annotated[MatrixService, Depends(matrix_service)]
) -> PlaybookDeleted:
    """404 when there is no such playbook."""
    await matrix.delete_playbook(playbook_id)
    return PlaybookDeleted(playbook_id=playbook_id)


@router.post(
    "/retrieve",
    response_model=EvidenceBundle,
    summary="Evidence bundle: semantic candidates narrowed by a SQL condition (queryd).",
)
async def retrieve_evidence(
    body: RetrieveRequest, matrix: Annotated[MatrixService, Depends(matrix_service)]
) -> EvidenceBundle:
    """Over-fetches `k × matrix.retrieve_overfetch` candidates from vectord, keeps those whose
    dataset row satisfies `sql_filter` (answered by queryd), in distance order, cut to `k`,
    each with its full row. 400: a `sql_filter` that is not one expression or would leave its
    WHERE clause, or that queryd refuses; 502: embedd, vectord or queryd unreachable."""
    return await matrix.retrieve(body)
