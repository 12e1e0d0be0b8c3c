"""catalogd's subject manifests and audit logs: wire format and typed client (SPEC §8, issue 7).

A *subject* is a person whose data the lake holds (``WORKER-17``). Its manifest says where that
data lives — a dataset, the key column and the row key (``id`` = ``w-17``) — which of the
dataset's columns are personal data (PII) and how long it is kept. Every read that returns a
subject's PII appends one row to that subject's HMAC-chained audit log (SPEC §8), which only
catalogd writes. A dataset with at least one manifest is *governed*.

Endpoints (catalogd, :3212):

- ``PUT /v1/catalog/subjects/{subject_id}`` body :class:`SubjectPut` → 201 (created) or 200
  :class:`SubjectManifest`; 404 unknown dataset, 409 the row key belongs to another subject or
  the dataset's key column differs, 422 a column the dataset does not have;
- ``GET /v1/catalog/subjects/{subject_id}`` → :class:`SubjectManifest` (404 when unknown);
- ``GET /v1/catalog/subjects?dataset=&limit=&cursor=`` → :class:`SubjectList` (id order);
- ``POST /v1/catalog/subjects`` body :class:`SubjectBatch` → :class:`SubjectBatchResult`: up to
  :data:`MAX_BATCH` manifests upserted in one transaction (what ``lakehouse subjects sync``
  uses; idempotent: an unchanged manifest is not rewritten);
- ``POST /v1/catalog/subjects/{subject_id}/audit`` body :class:`AuditAppend` → 201
  :class:`AuditRow` (the stored row; 404 unknown subject);
- ``GET /v1/catalog/subjects/{subject_id}/audit?since_seq=&limit=`` → :class:`AuditRows`;
- ``GET /v1/catalog/subjects/{subject_id}/audit/verify`` → :class:`AuditVerification`
  ``{count, tip, verified, error}``;
- ``POST /v1/catalog/audit/access`` body :class:`AccessRecord` → :class:`AccessReceipt`: the
  batched form daemons use (one call per request): row keys are mapped to subjects through the
  manifests and one row is appended per subject; keys without a manifest are counted, not
  errors;
- ``GET /v1/catalog/governance`` → :class:`GovernancePolicies`: per governed dataset, its key
  column and the union of its subjects' PII fields (what queryd checks results against).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lakehouse_common.contracts.catalog import validate_dataset_name
from lakehouse_common.errors import InvalidInput
from lakehouse_common.http import ServiceClient

SUBJECTS = "/v1/catalog/subjects"
ACCESS = "/v1/catalog/audit/access"
GOVERNANCE = "/v1/catalog/governance"

# Manifests per `POST /v1/catalog/subjects`.
MAX_BATCH = 10_000
# Rows per `GET .../audit` page.
MAX_AUDIT_PAGE = 10_000
DEFAULT_RETENTION_DAYS = 7 * 365

# A subject id is also its audit log's file name (`<id>.jsonl`): no separators, no dot first.
SUBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_subject_id(subject_id: str) -> str:
    if not SUBJECT_ID.fullmatch(subject_id):
        raise InvalidInput(
            f"invalid subject id {subject_id!r}: use 1-128 of [A-Za-z0-9._-], starting with a "
            "letter or digit",
            details={"subject_id": subject_id},
        )
    return subject_id


def _column(value: str) -> str:
    if not _COLUMN.fullmatch(value):
        raise ValueError(f"{value!r} is not a column name ([A-Za-z_][A-Za-z0-9_]*)")
    return value


def _dataset(value: str) -> str:
    try:
        return validate_dataset_name(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{value!r}: use 1-64 of [A-Za-z0-9_./:-], starting with a letter/digit")
    return value


def _row_key(value: str) -> str:
    if not value or len(value) > 256 or _CONTROL.search(value):
        raise ValueError("a row key is 1-256 characters without control characters")
    return value


def _fields(values: list[str]) -> list[str]:
    return sorted(set(values))


def _subject_id(value: str) -> str:
    if not SUBJECT_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a subject id (1-128 of [A-Za-z0-9._-])")
    return value


Column = Annotated[str, AfterValidator(_column)]
DatasetName = Annotated[str, AfterValidator(_dataset)]
Token = Annotated[str, AfterValidator(_token)]
RowKey = Annotated[str, AfterValidator(_row_key)]
SubjectId = Annotated[str, AfterValidator(_subject_id)]
FieldList = Annotated[list[Column], AfterValidator(_fields)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectPut(_Strict):
    """What a manifest says; catalogd adds the id and the timestamps."""

    dataset: DatasetName
    # The column whose value names the subject's row (`id`) and that value (`w-17`).
    key_column: Column = "id"
    row_key: RowKey
    # Columns of the dataset holding this subject's personal data (sorted, unique).
    pii_fields: FieldList = Field(min_length=1, max_length=256)
    retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1, le=36_500)


class SubjectManifest(BaseModel):
    """A stored manifest."""

    subject_id: str
    dataset: str
    key_column: str
    row_key: str
    pii_fields: list[str]
    retention_days: int
    created_at: datetime
    updated_at: datetime


class SubjectEntry(SubjectPut):
    """One manifest of a batch."""

    subject_id: SubjectId


class SubjectBatch(_Strict):
    subjects: list[SubjectEntry] = Field(min_length=1, max_length=MAX_BATCH)


class SubjectBatchResult(BaseModel):
    """How many manifests of the batch were new, changed, or already exactly so."""

    created: int
    updated: int
    unchanged: int
    count: int


class SubjectList(BaseModel):
    subjects: list[SubjectManifest]
    count: int
    # Pass as `cursor` for the next page; null on the last page.
    next_cursor: str | None


class Accessor(_Strict):
    """Who read the data and why; `trace_id` defaults to the request's trace id."""

    daemon: Token
    purpose: Token
    trace_id: str | None = Field(default=None, max_length=128)


class AuditAppend(_Strict):
    """One access to append to a subject's log."""

    accessor: Accessor
    action: Token = "read"
    # The PII fields disclosed (sorted, unique; may be empty).
    fields: FieldList = Field(default_factory=list, max_length=256)


class AuditAccessor(BaseModel):
    daemon: str
    purpose: str
    trace_id: str


class AuditRow(BaseModel):
    """A stored row (SPEC §8). `fields` is a list of field names, except on a key-rotation row,
    where it records `{epoch, key_id, previous_epoch, previous_key_id, previous_tip}`."""

    subject_id: str
    seq: int
    ts: str
    accessor: AuditAccessor
    action: str
    fields: list[str] | dict[str, Any]
    prev_hmac: str
    hmac: str


class AuditRows(BaseModel):
    subject_id: str
    rows: list[AuditRow]
    count: int
    # The seq to pass as `since_seq` for the next page; null when this page reached the end.
    next_since_seq: int | None


class AuditVerification(BaseModel):
    """SPEC §8: `count` and `tip` describe the verified prefix; `error` names the first bad row
    (line and seq) and why."""

    subject_id: str
    count: int
    tip: str
    verified: bool
    error: str | None
    epochs: int
    # Issue 18: the checkpoint anchoring the most rows of this log ({seq, ts, count, tip}; the
    # one contradicting it when `verified` is false because of it), whether the log holds it
    # unchanged, the rows newer than it (not yet anchored) and the torn-tail repairs.
    anchored: bool = False
    checkpoint: dict[str, Any] | None = None
    unanchored: int = 0
    repairs: list[dict[str, Any]] = []


class AccessRecord(_Strict):
    """One request's PII reads of one dataset, batched (the `AccessAuditor` sends these)."""

    dataset: DatasetName
    row_keys: list[RowKey] = Field(min_length=1)
    # The daemon that answered with the data.
    accessor: Token
    purpose: Token
    # The PII fields disclosed; empty = every PII field of each subject. Each subject's row
    # lists the ones that are its PII fields; a subject with none of them gets no row.
    fields: FieldList = Field(default_factory=list, max_length=256)
    action: Token = "read"
    # Defaults to the request's trace id.
    trace_id: str | None = Field(default=None, max_length=128)


class AccessReceipt(BaseModel):
    dataset: str
    # Rows appended (one per subject), keys without a manifest, subjects without those fields.
    recorded: int
    unmatched: int
    no_pii: int
    trace_id: str


class DatasetPolicy(BaseModel):
    """A governed dataset: the column naming each row's subject and every PII field."""

    dataset: str
    key_column: str
    pii_fields: list[str]
    subjects: int


class GovernancePolicies(BaseModel):
    datasets: list[DatasetPolicy]
    count: int


def subject_path(subject_id: str) -> str:
    return f"{SUBJECTS}/{quote(subject_id, safe='')}"


def audit_path(subject_id: str) -> str:
    """`POST` appends an access row; `GET` reads rows (`?since_seq=`)."""
    return f"{subject_path(subject_id)}/audit"


def verify_path(subject_id: str) -> str:
    """`GET` verifies the subject's audit chain."""
    return f"{audit_path(subject_id)}/verify"


class SubjectsClient:
    """catalogd's subject and audit endpoints over HTTP (the `AccessAuditor` and tools)."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def put(self, subject_id: str, manifest: SubjectPut) -> SubjectManifest:
        data = await self.client.call_json(
            "PUT", subject_path(subject_id), json=manifest.model_dump(mode="json")
        )
        return SubjectManifest.model_validate(data)

    async def get(self, subject_id: str) -> SubjectManifest:
        data = await self.client.call_json("GET", subject_path(subject_id))
        return SubjectManifest.model_validate(data)

    async def put_batch(self, batch: SubjectBatch) -> SubjectBatchResult:
        data = await self.client.call_json("POST", SUBJECTS, json=batch.model_dump(mode="json"))
        return SubjectBatchResult.model_validate(data)

    async def append(self, subject_id: str, access: AuditAppend) -> AuditRow:
        data = await self.client.call_json(
            "POST",
            audit_path(subject_id),
            json=access.model_dump(mode="json", exclude_none=True),
        )
        return AuditRow.model_validate(data)

    async def verify(self, subject_id: str) -> AuditVerification:
        data = await self.client.call_json("GET", verify_path(subject_id))
        return AuditVerification.model_validate(data)

    async def record_access(
        self, record: AccessRecord, *, timeout_s: float | None = None
    ) -> AccessReceipt:
        data = await self.client.call_json(
            "POST",
            ACCESS,
            json=record.model_dump(mode="json", exclude_none=True),
            timeout_s=timeout_s,
        )
        return AccessReceipt.model_validate(data)

    async def governance(self) -> GovernancePolicies:
        return GovernancePolicies.model_validate(await self.client.call_json("GET", GOVERNANCE))
