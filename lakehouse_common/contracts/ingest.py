"""ingestd's wire format and typed client (SPEC §4, ingestd).

`POST /v1/ingest/{dataset}` turns an uploaded CSV, JSONL or Parquet file — or an object already
in the Store — into the next version of a dataset and answers 201 with its manifest
(`IngestResponse`, the catalog's `DatasetManifest`).

- Body = the file. Its format is `?format=csv|jsonl|parquet` when given, else the Content-Type
  (`FORMAT_OF_MEDIA_TYPE`), else the extension of `?filename=`; otherwise 415.
- Body = JSON (`Content-Type: application/json`) = `IngestSourceRequest`, naming a Store object;
  its format is `?format=`, else the body's `format`, else the key's extension.
- `?mode=replace` (default: the version holds exactly the uploaded rows) or `append` (the
  previous version's rows, then the new ones, cast to the previous schema).
- `?required=id,role`: columns that must be present and non-null. An `id` column is always
  required when the upload or the previous version has one.

A rejected ingest writes nothing: 400 when the file cannot be read (bad quoting, not UTF-8,
binary garbage, empty, not Parquet), 422 when it does not fit (missing required column, a value
that does not convert to the column's type, a schema conflict with the previous version). The
envelope's `details` is `IngestErrorDetails`: `{errors: [{row, column, reason}], truncated}` with
1-based data-row numbers (`null` when the problem is not one row's).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict, Field

from lakehouse_common.contracts.catalog import DatasetManifest
from lakehouse_common.errors import UpstreamError
from lakehouse_common.http import ServiceClient, decode_answer

AREA = "ingest"
INGEST = "/v1/ingest"
JOBS = f"{INGEST}/jobs"

IngestFormat = Literal["csv", "jsonl", "parquet"]
IngestMode = Literal["replace", "append"]
FORMATS: Final[tuple[str, ...]] = get_args(IngestFormat)
MODES: Final[tuple[str, ...]] = get_args(IngestMode)

# Content-Type (media type, lowercase, without parameters) → format. `application/octet-stream`
# is deliberately absent: it says nothing, so it needs `?format=`.
FORMAT_OF_MEDIA_TYPE: Final[Mapping[str, IngestFormat]] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
# What clients send for each format.
MEDIA_TYPE_OF_FORMAT: Final[Mapping[IngestFormat, str]] = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
FORMAT_OF_EXTENSION: Final[Mapping[str, IngestFormat]] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SOURCE_MEDIA_TYPE: Final = "application/json"

# The manifest a successful ingest answers (201).
IngestResponse = DatasetManifest


def media_type_of(content_type: str | None) -> str:
    """`text/CSV; charset=utf-8` → `text/csv`; empty when absent."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def format_of_media_type(content_type: str | None) -> IngestFormat | None:
    return FORMAT_OF_MEDIA_TYPE.get(media_type_of(content_type))


def format_of_filename(name: str | None) -> IngestFormat | None:
    """The format a file name's extension names (`workers.csv` → `csv`), else None."""
    if not name:
        return None
    return FORMAT_OF_EXTENSION.get(os.path.splitext(name)[1].lower())


def ingest_path(dataset: str) -> str:
    return f"{INGEST}/{quote(dataset, safe='')}"


def index_job_path(dataset: str) -> str:
    """`POST` an `IndexJobRequest`: start indexing the dataset."""
    return f"{ingest_path(dataset)}/index"


def job_path(job_id: str) -> str:
    """`GET` one index job (`GET JOBS` lists them)."""
    return f"{JOBS}/{quote(job_id, safe='')}"


def ingest_params(
    *,
    format: IngestFormat | None = None,
    mode: IngestMode = "replace",
    required: Sequence[str] = (),
    filename: str | None = None,
) -> dict[str, str]:
    """Query parameters of `POST /v1/ingest/{dataset}`."""
    params: dict[str, str] = {"mode": mode}
    if format is not None:
        params["format"] = format
    if required:
        params["required"] = ",".join(required)
    if filename:
        params["filename"] = filename
    return params


class SourceObject(BaseModel):
    """An object already in the Store; `bucket` defaults to the default bucket."""

    model_config = ConfigDict(extra="forbid")

    bucket: str | None = None
    key: str = Field(min_length=1)


class IngestSourceRequest(BaseModel):
    """JSON body of an ingest that reads a Store object instead of an uploaded file."""

    model_config = ConfigDict(extra="forbid")

    source: SourceObject
    format: IngestFormat | None = None


class IngestErrorDetail(BaseModel):
    """One reason an ingest was rejected: a 1-based data row and a column, when they apply."""

    row: int | None = None
    column: str | None = None
    reason: str


class IngestErrorDetails(BaseModel):
    """`details` of a rejected ingest: the first `ingest.max_reported_errors` problems;
    `truncated` when the scan stopped there and more may exist."""

    errors: list[IngestErrorDetail]
    truncated: bool = False

    @classmethod
    def from_details(cls, details: Any) -> IngestErrorDetails | None:
        """Parse an error envelope's `details`, or None when it is not an ingest rejection."""
        if not isinstance(details, dict) or not isinstance(details.get("errors"), list):
            return None
        try:
            return cls.model_validate(details)
        except ValueError:
            return None


# -- index jobs (issue 4): rows → text → embedd → vectord -------------------------------------

INDEX_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class IndexJobRequest(BaseModel):
    """`POST /v1/ingest/{dataset}/index`: render each row of a version through `text_template`
    (`{column}` placeholders; lists joined with ", "), embed, upsert into `index` keyed by
    `id_column` with `metadata_columns` as metadata."""

    model_config = ConfigDict(extra="forbid")

    index: str = Field(pattern=INDEX_NAME_PATTERN)
    text_template: str = Field(min_length=1, max_length=4000)
    id_column: str = "id"
    metadata_columns: list[str] = Field(default_factory=list, max_length=64)
    batch_size: int = Field(default=64, ge=1, le=256)
    # The dataset version to index; the latest when omitted.
    version: int | None = Field(default=None, ge=1)


IndexJobState = Literal["queued", "running", "succeeded", "failed"]


class IndexJob(BaseModel):
    """`GET /v1/ingest/jobs/{id}`: where an index job stands."""

    id: str
    dataset: str
    version: int
    index: str
    state: IndexJobState
    done: int
    total: int
    rows_per_s: float
    error: str | None
    created_at: datetime


class IndexJobList(BaseModel):
    jobs: list[IndexJob]
    count: int


class IngestClient:
    """ingestd over HTTP (directly or through the gateway: the paths are the same)."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def ingest_bytes(
        self,
        dataset: str,
        data: bytes,
        *,
        format: IngestFormat,
        mode: IngestMode = "replace",
        required: Sequence[str] = (),
        filename: str | None = None,
    ) -> DatasetManifest:
        """Upload a small in-memory file."""
        return await self._post(
            dataset,
            data,
            MEDIA_TYPE_OF_FORMAT[format],
            ingest_params(format=format, mode=mode, required=required, filename=filename),
        )

    async def ingest_file(
        self,
        dataset: str,
        path: str | os.PathLike[str],
        *,
        format: IngestFormat | None = None,
        mode: IngestMode = "replace",
        required: Sequence[str] = (),
    ) -> DatasetManifest:
        """Stream a local file (never read whole into memory); the format defaults to the
        file's extension."""
        file = Path(path)
        fmt = format or format_of_filename(file.name)
        if fmt is None:
            raise ValueError(f"cannot tell the format of {file.name!r}: pass format=")
        params = ingest_params(format=fmt, mode=mode, required=required, filename=file.name)
        with file.open("rb") as body:
            return await self._post(dataset, body, MEDIA_TYPE_OF_FORMAT[fmt], params)

    async def ingest_object(
        self,
        dataset: str,
        key: str,
        *,
        bucket: str | None = None,
        format: IngestFormat | None = None,
        mode: IngestMode = "replace",
        required: Sequence[str] = (),
    ) -> DatasetManifest:
        """Ingest an object already in the Store."""
        request = IngestSourceRequest(source=SourceObject(bucket=bucket, key=key), format=format)
        body = orjson.dumps(request.model_dump(mode="json", exclude_none=True))
        params = ingest_params(mode=mode, required=required)
        return await self._post(dataset, body, SOURCE_MEDIA_TYPE, params)

    async def _post(
        self, dataset: str, body: Any, content_type: str, params: Mapping[str, str]
    ) -> DatasetManifest:
        # An ingest is a POST, so it is never retried; a file body streams.
        status, _, payload = await self.client.request(
            "POST",
            ingest_path(dataset),
            data=body,
            params=params,
            headers={"Content-Type": content_type},
        )
        decoded = decode_answer(self.client.daemon, status, payload, f"the ingest of {dataset!r}")
        if not isinstance(decoded, dict):
            raise UpstreamError(f"{self.client.daemon} answered a non-JSON body to an ingest")
        return DatasetManifest.model_validate(decoded)

    async def start_index_job(self, dataset: str, request: IndexJobRequest) -> IndexJob:
        data = await self.client.call_json(
            "POST",
            index_job_path(dataset),
            json=request.model_dump(mode="json", exclude_none=True),
        )
        return IndexJob.model_validate(data)

    async def get_job(self, job_id: str) -> IndexJob:
        data = await self.client.call_json("GET", job_path(job_id))
        return IndexJob.model_validate(data)
