"""ingestd routes (SPEC §4): `POST /v1/ingest/{dataset}` — a file (or a Store object) becomes the
dataset's next version."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import ValidationError

from lakehouse_common.contracts.catalog import DatasetManifest, validate_dataset_name
from lakehouse_common.contracts.ingest import (
    FORMATS,
    SOURCE_MEDIA_TYPE,
    IndexJob,
    IndexJobList,
    IndexJobRequest,
    IngestFormat,
    IngestMode,
    IngestSourceRequest,
    format_of_filename,
    format_of_media_type,
    media_type_of,
)
from lakehouse_common.errors import (
    InvalidInput,
    PayloadTooLarge,
    UnprocessableEntity,
    UnsupportedMediaType,
)
from lakehouse_common.store import StagedObject
from lakehouse_common.store.keys import validate_bucket, validate_key
from services.ingestd.jobs import IndexJobs
from services.ingestd.service import IngestOptions, IngestService
from services.ingestd.state import index_jobs, ingest_service

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

# A JSON source request names an object; it is never large.
SOURCE_REQUEST_MAX_BYTES = 64 * 1024
_FORMAT_HINT = "pass ?format=" + "|".join(FORMATS)


def _required(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",")))
    if not all(names):
        raise InvalidInput(f"required: empty column name in {raw!r}", details={"required": raw})
    return names


async def _source_request(request: Request) -> IngestSourceRequest:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > SOURCE_REQUEST_MAX_BYTES:
            raise PayloadTooLarge(
                f"a JSON source request is at most {SOURCE_REQUEST_MAX_BYTES} bytes; "
                "upload data files with their own Content-Type"
            )
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the JSON body is not valid JSON: {exc}") from None
    try:
        return IngestSourceRequest.model_validate(raw)
    except ValidationError as exc:
        details = [
            {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        first = details[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise UnprocessableEntity(
            f"{where}: {first['msg']} (expected {{source: {{bucket?, key}}, format?}})",
            details=details,
        ) from None


@router.post(
    "/{dataset}",
    status_code=201,
    response_model=DatasetManifest,
    response_model_by_alias=True,
    summary="Ingest a CSV, JSONL or Parquet file (or a Store object) as the next version.",
)
async def ingest_dataset(
    request: Request,
    service: Annotated[IngestService, Depends(ingest_service)],
    dataset: str,
    mode: IngestMode = "replace",
    format_: Annotated[IngestFormat | None, Query(alias="format")] = None,
    required: Annotated[str | None, Query(description="comma-separated column names")] = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> DatasetManifest:
    """201 with the new version's manifest; 400 unreadable file, 415 unknown format, 422 rows or
    schema that do not fit (details `{errors: [{row, column, reason}], truncated}`), 409 when
    concurrent commits kept winning. A rejected ingest writes nothing."""
    validate_dataset_name(dataset)
    needed = _required(required)
    media = media_type_of(content_type)
    spool: StagedObject
    if media == SOURCE_MEDIA_TYPE:
        body = await _source_request(request)
        bucket = validate_bucket(body.source.bucket or service.bucket)
        key = validate_key(body.source.key)
        fmt = format_ or body.format or format_of_filename(key)
        if fmt is None:
            raise UnsupportedMediaType(
                f"cannot tell the format of {bucket}/{key} from its name; {_FORMAT_HINT} or "
                "a `format` in the body",
                details={"bucket": bucket, "key": key},
            )
        origin: dict[str, str] = {"bucket": bucket, "key": key}
        spool = await service.spool_object(bucket, key)
    else:
        fmt = format_ or format_of_media_type(media) or format_of_filename(filename)
        if fmt is None:
            raise UnsupportedMediaType(
                f"cannot tell the format of a {media or 'untyped'} body; {_FORMAT_HINT} or send "
                "Content-Type text/csv, application/x-ndjson or application/vnd.apache.parquet",
                details={"content_type": content_type},
            )
        origin = {"filename": filename} if filename else {}
        spool = await service.spool_stream(request.stream())
    with spool:
        options = IngestOptions(
            dataset=dataset, format=fmt, mode=mode, required=needed, origin=origin
        )
        return await service.ingest(spool, options)


@router.post(
    "/{dataset}/index",
    status_code=202,
    response_model=IndexJob,
    summary="Start a job: render each row, embed it through embedd, upsert it into vectord.",
)
async def start_index_job(
    service: Annotated[IngestService, Depends(ingest_service)],
    jobs: Annotated[IndexJobs, Depends(index_jobs)],
    dataset: str,
    body: IndexJobRequest,
) -> IndexJob:
    """202 with the job; poll `GET /v1/ingest/jobs/{id}`. 404 for an unknown dataset or
    version, 422 when the template, id or metadata columns are not in its schema."""
    validate_dataset_name(dataset)
    catalog = service.catalog
    if body.version is None:
        manifest = (await catalog.get_dataset(dataset)).latest
    else:
        manifest = await catalog.get_version(dataset, body.version)
    return jobs.start(manifest, body)


@router.get("/jobs", response_model=IndexJobList, summary="Every index job since ingestd started.")
async def list_index_jobs(jobs: Annotated[IndexJobs, Depends(index_jobs)]) -> IndexJobList:
    """Oldest first."""
    listed = jobs.all()
    return IndexJobList(jobs=listed, count=len(listed))


@router.get("/jobs/{job_id}", response_model=IndexJob, summary="An index job's state and progress.")
async def get_index_job(jobs: Annotated[IndexJobs, Depends(index_jobs)], job_id: str) -> IndexJob:
    """404 for an unknown job id."""
    return jobs.get(job_id)
