"""Subject governance on catalogd: manifests, per-subject audit logs, batched access records
(SPEC §8, issue 7). No FastAPI here: the routes parse and call, this decides.

An access record (``POST /v1/catalog/audit/access``) is how a daemon audits one request's PII
reads in one call: its row keys are mapped to subjects through the registry, and each subject
gets one row ``{accessor: {daemon, purpose, trace_id}, action, fields}`` where ``fields`` are the
disclosed fields that are that subject's PII, plus the manifest's key column when the record
lists it (an answer that identifies the subject, such as a ranked match, discloses who they
are). Keys without a manifest are counted as ``unmatched``; subjects none of whose PII or key
was disclosed, as ``no_pii``. The rows of different
subjects are appended in parallel; the answer comes after every row is fsynced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from lakehouse_common.audit import build_row
from lakehouse_common.config import LakehouseSettings, audit_key_path
from lakehouse_common.contracts.subjects import (
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
    validate_subject_id,
)
from lakehouse_common.errors import NotFound, UnprocessableEntity
from lakehouse_common.tracing import current_trace_id
from services.catalogd.audit_logs import SubjectAuditLogs
from services.catalogd.service import DatasetCatalog
from services.catalogd.subjects import SubjectRegistry

SUBJECTS_DIR = "subjects"


class SubjectGovernance:
    """The registry and the logs behind catalogd's subject endpoints."""

    def __init__(
        self, registry: SubjectRegistry, logs: SubjectAuditLogs, max_access_keys: int
    ) -> None:
        self.registry = registry
        self.logs = logs
        self.max_access_keys = max_access_keys

    @classmethod
    def open(cls, settings: LakehouseSettings, catalog: DatasetCatalog) -> SubjectGovernance:
        """Open the logs first: a bad key refuses the start before anything is created."""
        root: Path = settings.data_dir / SUBJECTS_DIR
        logs = SubjectAuditLogs(
            root / "audit", audit_key_path(settings), workers=settings.audit.append_workers
        )
        try:
            registry = SubjectRegistry(root / "subjects.db", catalog)
        except BaseException:
            logs.close()  # the append pool's threads, when the registry cannot open
            raise
        return cls(registry, logs, settings.audit.max_access_keys)

    def close(self) -> None:
        self.logs.close()
        self.registry.close()

    # -- manifests ------------------------------------------------------------------------

    async def put(self, subject_id: str, manifest: SubjectPut) -> tuple[SubjectManifest, bool]:
        validate_subject_id(subject_id)
        return await run_in_threadpool(self.registry.put, subject_id, manifest)

    async def get(self, subject_id: str) -> SubjectManifest:
        validate_subject_id(subject_id)
        return await run_in_threadpool(self.registry.get, subject_id)

    async def put_batch(self, batch: SubjectBatch) -> SubjectBatchResult:
        return await run_in_threadpool(self.registry.put_batch, batch.subjects)

    async def list(self, *, dataset: str | None, limit: int, cursor: str | None) -> SubjectList:
        return await run_in_threadpool(
            lambda: self.registry.list(dataset=dataset, limit=limit, cursor=cursor)
        )

    async def policies(self) -> GovernancePolicies:
        return await run_in_threadpool(self.registry.policies)

    # -- audit logs -----------------------------------------------------------------------

    async def _require(self, subject_id: str) -> None:
        validate_subject_id(subject_id)
        if not await run_in_threadpool(self.registry.exists, subject_id):
            raise NotFound(f"no subject {subject_id!r}", details={"subject_id": subject_id})

    async def append(self, subject_id: str, access: AuditAppend) -> AuditRow:
        await self._require(subject_id)
        trace_id = access.accessor.trace_id
        row = build_row(
            subject_id,
            daemon=access.accessor.daemon,
            purpose=access.accessor.purpose,
            action=access.action,
            fields=access.fields,
            trace_id=current_trace_id.get() if trace_id is None else trace_id,
        )
        stored = await self.logs.append(subject_id, [row])
        return AuditRow.model_validate(stored[-1])

    async def read(self, subject_id: str, since_seq: int, limit: int) -> AuditRows:
        await self._require(subject_id)
        rows, next_seq = await run_in_threadpool(self.logs.read, subject_id, since_seq, limit)
        valid = []
        for raw in rows:
            # A line altered out of the row shape is not a row; `verify` names it.
            try:
                valid.append(AuditRow.model_validate(raw))
            except ValidationError:
                continue
        return AuditRows(
            subject_id=subject_id, rows=valid, count=len(valid), next_since_seq=next_seq
        )

    async def verify(self, subject_id: str) -> AuditVerification:
        await self._require(subject_id)
        result = await run_in_threadpool(self.logs.verify_anchored, subject_id)
        answer = result.as_dict()
        answer.pop("exists")
        return AuditVerification.model_validate({"subject_id": subject_id, **answer})

    async def record_access(self, record: AccessRecord) -> AccessReceipt:
        if len(record.row_keys) > self.max_access_keys:
            raise UnprocessableEntity(
                f"{len(record.row_keys)} row keys in one access record; at most "
                f"{self.max_access_keys} (audit.max_access_keys): split the batch",
                details={"row_keys": len(record.row_keys), "max": self.max_access_keys},
            )
        keys = list(dict.fromkeys(record.row_keys))
        found = await run_in_threadpool(self.registry.lookup, record.dataset, keys)
        trace_id = current_trace_id.get() if record.trace_id is None else record.trace_id
        disclosed = set(record.fields)
        rows: dict[str, dict[str, Any]] = {}
        no_pii = 0
        for ref in found.values():
            if ref.subject_id in rows:
                continue
            fields = (
                [f for f in ref.pii_fields if f in disclosed] if disclosed else list(ref.pii_fields)
            )
            if ref.key_column in disclosed:  # the answer names this subject (a ranked match)
                fields = sorted({ref.key_column, *fields})
            if not fields:
                no_pii += 1
                continue
            rows[ref.subject_id] = build_row(
                ref.subject_id,
                daemon=record.accessor,
                purpose=record.purpose,
                action=record.action,
                fields=fields,
                trace_id=trace_id,
            )
        await self.logs.append_each(rows)
        return AccessReceipt(
            dataset=record.dataset,
            recorded=len(rows),
            unmatched=len(keys) - len(found),
            no_pii=no_pii,
            trace_id=trace_id,
        )
