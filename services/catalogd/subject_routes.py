"""catalogd's subject routes (SPEC §8, issue 7): manifests, audit append/read/verify, batched
access records and the governance policy. The wire format is lakehouse_common.contracts.subjects.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from lakehouse_common.contracts.subjects import (
    MAX_AUDIT_PAGE,
    MAX_BATCH,
    AccessReceipt,
    AccessRecord,
    AuditAppend,
    AuditRow,
    AuditRows,
    AuditVerification,
    GovernancePolicies,
    SubjectBatch,
    SubjectBatchResult,
    SubjectList,
    SubjectManifest,
    SubjectPut,
)
from services.catalogd.governance import SubjectGovernance
from services.catalogd.state import subject_governance

router = APIRouter(prefix="/v1/catalog", tags=["subjects"])


@router.put(
    "/subjects/{subject_id}",
    response_model=SubjectManifest,
    status_code=200,
    responses={201: {"model": SubjectManifest, "description": "created"}},
    summary="Create or replace a subject manifest (201 created, 200 replaced or unchanged).",
)
async def put_subject(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)],
    response: Response,
    subject_id: str,
    manifest: SubjectPut,
) -> SubjectManifest:
    """400 bad subject id; 404 unknown dataset; 409 the row belongs to another subject or the
    dataset is keyed by another column; 422 a column the dataset does not have."""
    stored, created = await governance.put(subject_id, manifest)
    if created:
        response.status_code = 201
    return stored


@router.get(
    "/subjects/{subject_id}",
    response_model=SubjectManifest,
    summary="One subject manifest.",
)
async def get_subject(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)], subject_id: str
) -> SubjectManifest:
    """404 when no manifest names this subject."""
    return await governance.get(subject_id)


@router.get("/subjects", response_model=SubjectList, summary="Subject manifests, in id order.")
async def list_subjects(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)],
    dataset: Annotated[str | None, Query(description="only this dataset's subjects")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 1000,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> SubjectList:
    """Pages of at most `limit` manifests; `next_cursor` is null on the last page."""
    return await governance.list(dataset=dataset, limit=limit, cursor=cursor)


@router.post(
    "/subjects",
    response_model=SubjectBatchResult,
    summary=f"Upsert up to {MAX_BATCH} subject manifests in one transaction (idempotent).",
)
async def put_subjects(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)], batch: SubjectBatch
) -> SubjectBatchResult:
    """All or nothing: any refused manifest (404, 409, 422 as for PUT) refuses the batch."""
    return await governance.put_batch(batch)


@router.post(
    "/subjects/{subject_id}/audit",
    response_model=AuditRow,
    status_code=201,
    summary="Append one access to a subject's HMAC-chained audit log; answers the stored row.",
)
async def append_access(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)],
    subject_id: str,
    access: AuditAppend,
) -> AuditRow:
    """404 unknown subject; 409 when the log's last row is torn or verifies under no key (the
    chain is never extended from a bad tip). `accessor.trace_id` defaults to the request's."""
    return await governance.append(subject_id, access)


@router.get(
    "/subjects/{subject_id}/audit",
    response_model=AuditRows,
    summary="Read a subject's audit rows after `since_seq`.",
)
async def read_audit(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)],
    subject_id: str,
    since_seq: Annotated[int, Query(ge=0, description="rows with a greater seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 1000,
) -> AuditRows:
    """404 unknown subject; a subject without accesses answers no rows."""
    return await governance.read(subject_id, since_seq, limit)


@router.get(
    "/subjects/{subject_id}/audit/verify",
    response_model=AuditVerification,
    summary="Verify a subject's audit chain: {count, tip, verified, error}.",
)
async def verify_audit(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)], subject_id: str
) -> AuditVerification:
    """Checks every raw stored line under its epoch's key; `error` names the first bad row."""
    return await governance.verify(subject_id)


@router.post(
    "/audit/access",
    response_model=AccessReceipt,
    summary="Record one request's PII reads of a dataset: one audit row per subject.",
)
async def record_access(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)], record: AccessRecord
) -> AccessReceipt:
    """Row keys without a manifest are counted (`unmatched`), not refused; 422 above
    `audit.max_access_keys` keys. Answers after every row is fsynced."""
    return await governance.record_access(record)


@router.get(
    "/governance",
    response_model=GovernancePolicies,
    summary="Governed datasets: key column and PII fields (what readers check results for).",
)
async def get_governance(
    governance: Annotated[SubjectGovernance, Depends(subject_governance)],
) -> GovernancePolicies:
    """A dataset is governed while at least one subject manifest names it."""
    return await governance.policies()
