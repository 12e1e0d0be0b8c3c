"""matrixd routes (SPEC §5 matrixd): search, playbooks, retrieve."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
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
from services.matrixd.service import MatrixService

router = APIRouter(prefix="/v1/matrix", tags=["matrix"])


def _matrix(request: Request) -> MatrixService:
    service: MatrixService = request.app.state.matrix
    return service


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Staffing search: k-NN over an index, then same-role playbooks (boost, inject).",
)
async def search_workers(request: Request, body: SearchRequest) -> Response:
    """Embeds `query_text`, searches `index` (`exclude_ids` and `filters` applied inside
    vectord); with `use_playbook` and a `query_role`, recordings for that role on close
    queries multiply their answer's distance by `1 − 0.5·score` and inject approved answers
    missing from the organic results. 422: empty query, k outside 1..`matrix.max_k`; 404:
    unknown index; 502: embedd or vectord unreachable."""
    answer = await _matrix(request).search(body)
    # Dumped once here: FastAPI would validate the model again before serialising it.
    return JsonResponse(answer.model_dump(mode="json"))


@router.post(
    "/playbooks/record",
    response_model=PlaybookRecorded,
    summary="Record an approved answer for a query and role (re-recording updates it).",
)
async def record_playbook(request: Request, body: RecordPlaybookRequest) -> PlaybookRecorded:
    """The id is `pb-` + 16 hex of sha256(normalised query, normalised role, answer, index).
    Acknowledged once vectord has the recording in its write-ahead log. 404: `answer_id` is
    not in `index`; 422: score outside [0, 1], blank query, role or answer."""
    return await _matrix(request).record_playbook(body)


@router.get(
    "/playbooks",
    response_model=PlaybookList,
    summary="Recorded playbooks, newest first, optionally of one role and index.",
)
async def list_playbooks(
    request: Request,
    role: str | None = Query(default=None, max_length=200, description="compared normalised"),
    index: str | None = Query(default=None, max_length=63),
    limit: int = Query(default=100, ge=1, le=1000),
) -> PlaybookList:
    """`truncated` is set when more recordings matched than were answered."""
    return await _matrix(request).list_playbooks(role=role, index=index, limit=limit)


@router.get("/playbooks/{playbook_id}", response_model=Playbook, summary="One playbook recording.")
async def get_playbook(request: Request, playbook_id: str) -> Playbook:
    """404 when there is no such playbook."""
    return await _matrix(request).get_playbook(playbook_id)


@router.delete(
    "/playbooks/{playbook_id}",
    response_model=PlaybookDeleted,
    summary="Delete a playbook recording: it stops influencing searches at once.",
)
async def delete_playbook(request: Request, playbook_id: str) -> PlaybookDeleted:
    """404 when there is no such playbook."""
    await _matrix(request).delete_playbook(playbook_id)
    return PlaybookDeleted(playbook_id=playbook_id)


@router.post(
    "/retrieve",
    response_model=EvidenceBundle,
    summary="Evidence bundle: semantic candidates narrowed by a SQL condition (queryd).",
)
async def retrieve_evidence(request: Request, body: RetrieveRequest) -> EvidenceBundle:
    """Over-fetches `k × matrix.retrieve_overfetch` candidates from vectord, keeps those whose
    dataset row satisfies `sql_filter` (answered by queryd), in distance order, cut to `k`,
    each with its full row. 400: a `sql_filter` that is not one expression or would leave its
    WHERE clause, or that queryd refuses; 502: embedd, vectord or queryd unreachable."""
    return await _matrix(request).retrieve(body)
