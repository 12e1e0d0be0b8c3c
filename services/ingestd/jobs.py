"""Index jobs (SPEC §4, issue 4): a dataset version's rows → text → embedd → vectord.

`POST /v1/ingest/{dataset}/index` starts a job that reads the version's Parquet parts from the
Store in batches, renders each row through a `str.format`-style template
(`"{role} in {city}, {state}. {skills}"`; list values are joined with ", ", nulls render empty),
embeds the texts through embedd and upserts `{id, vector, metadata}` into a vectord index
(created with the embedding's dimension and cosine space when missing). `GET
/v1/ingest/jobs/{id}` reports state, done/total and rows/s.

Re-running a job on the same dataset version is idempotent: ids come from the id column and
vectord upserts replace, and the local model is deterministic, so the index ends in the same
state. Jobs live in memory (a restart forgets them; re-run the job — it is idempotent).

A batch whose embed or upsert fails transiently (embedd/vectord unreachable, busy or slow: 502
`upstream_unavailable`, 503, 504) is retried `ingest.index_retries` times with doubling backoff
before the job fails — both calls are idempotent, and a 10k-row job should not die of one slow
batch on a loaded machine. Any other error fails the job at once with its message.
"""

from __future__ import annotations

import asyncio
import string
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse_common.contracts.catalog import DatasetManifest
from lakehouse_common.contracts.ingest import IndexJob, IndexJobRequest
from lakehouse_common.errors import (
    LakehouseError,
    NotFound,
    ServiceUnavailable,
    UnprocessableEntity,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from lakehouse_common.logging import get_logger
from lakehouse_common.store import Store
from lakehouse_common.tracing import mint_trace_id

log = get_logger("lakehouse.ingestd.jobs")
T = TypeVar("T")

TRANSIENT: tuple[type[LakehouseError], ...] = (
    UpstreamUnavailable,
    ServiceUnavailable,
    UpstreamTimeout,
)


class EmbedPort(Protocol):
    async def embed_texts(self, texts: list[str]) -> list[list[float]]: ...


class VectorPort(Protocol):
    async def ensure_index(self, name: str, dim: int) -> None: ...

    async def upsert(self, name: str, items: list[dict[str, Any]]) -> None: ...


def template_fields(template: str) -> list[str]:
    """The column names a template refers to; 422 when it is not a valid template."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UnprocessableEntity(
            f"text_template is not a valid template: {exc}", details={"template": template}
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or not name.isidentifier() or spec or conversion:
            raise UnprocessableEntity(
                f"text_template field {{{name}}} must be a plain column name",
                details={"template": template},
            )
        names.append(name)
    return names


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text_value(v) for v in value if v is not None)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


@dataclass
class _Job:
    id: str
    dataset: str
    version: int
    request: IndexJobRequest
    total: int
    state: str = "queued"
    done: int = 0
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float | None = None
    finished: float | None = None

    def view(self) -> IndexJob:
        elapsed = (self.finished or time.monotonic()) - self.started if self.started else 0.0
        return IndexJob(
            id=self.id,
            dataset=self.dataset,
            version=self.version,
            index=self.request.index,
            state=self.state,  # type: ignore[arg-type]
            done=self.done,
            total=self.total,
            rows_per_s=round(self.done / elapsed, 1) if elapsed > 0 else 0.0,
            error=self.error,
            created_at=self.created_at,
        )


class IndexJobs:
    """Runs index jobs one at a time per index (upserts into one index never interleave)."""

    def __init__(
        self,
        store: Store,
        bucket: str,
        embed: EmbedPort,
        vectors: VectorPort,
        *,
        retries: int = 3,
        retry_backoff_s: float = 1.0,
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.embed = embed
        self.vectors = vectors
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self._jobs: dict[str, _Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._index_locks: dict[str, asyncio.Lock] = {}

    def get(self, job_id: str) -> IndexJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no index job {job_id!r}", details={"job": job_id})
        return job.view()

    def all(self) -> list[IndexJob]:
        return [job.view() for job in sorted(self._jobs.values(), key=lambda j: j.created_at)]

    def start(self, manifest: DatasetManifest, request: IndexJobRequest) -> IndexJob:
        """Check the request against the version's schema, then run it in the background."""
        columns = {f.name for f in manifest.schema_}
        wanted = [
            request.id_column,
            *request.metadata_columns,
            *template_fields(request.text_template),
        ]
        missing = sorted({c for c in wanted if c not in columns})
        if missing:
            raise UnprocessableEntity(
                f"dataset {manifest.name!r} v{manifest.version} has no column(s) {missing}",
                details={"missing": missing, "columns": sorted(columns)},
            )
        job = _Job(
            id=f"job-{mint_trace_id()}",
            dataset=manifest.name,
            version=manifest.version,
            request=request,
            total=manifest.row_count,
        )
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job, manifest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job.view()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, job: _Job, manifest: DatasetManifest) -> None:
        lock = self._index_locks.setdefault(job.request.index, asyncio.Lock())
        async with lock:
            job.state = "running"
            job.started = time.monotonic()
            try:
                await self._index(job, manifest)
                job.state = "succeeded"
            except asyncio.CancelledError:
                job.state, job.error = "failed", "cancelled: ingestd stopped"
                raise
            except LakehouseError as exc:
                job.state, job.error = "failed", f"{exc.code}: {exc.message}"
            except Exception as exc:  # a job's failure is data; the daemon keeps serving
                log.exception("index job failed", job=job.id)
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                job.finished = time.monotonic()
                log.info("index job ended", job=job.id, state=job.state, done=job.done)

    async def _index(self, job: _Job, manifest: DatasetManifest) -> None:
        req = job.request
        template_cols = template_fields(req.text_template)
        columns = list(dict.fromkeys([req.id_column, *req.metadata_columns, *template_cols]))
        batches = self._batches(manifest, columns, req.batch_size)
        ensured = False
        while True:
            rows = await asyncio.to_thread(next, batches, None)
            if rows is None:
                return
            texts = [
                req.text_template.format(**{c: _text_value(row[c]) for c in template_cols})
                for row in rows
            ]
            vectors = await self._retrying(job, partial(self.embed.embed_texts, texts))
            if not ensured:
                await self.vectors.ensure_index(req.index, len(vectors[0]))
                ensured = True
            items = [
                {
                    "id": str(row[req.id_column]),
                    "vector": vector,
                    "metadata": {c: _json_value(row[c]) for c in req.metadata_columns},
                }
                for row, vector in zip(rows, vectors, strict=True)
            ]
            await self._retrying(job, partial(self.vectors.upsert, req.index, items))
            job.done += len(rows)

    async def _retrying(self, job: _Job, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return await call()
            except TRANSIENT as exc:
                if attempt == self.retries:
                    raise
                delay = self.retry_backoff_s * 2**attempt
                log.warning(
                    "index batch failed, retrying",
                    job=job.id,
                    attempt=attempt + 1,
                    delay_s=delay,
                    error=f"{exc.code}: {exc.message}",
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _batches(
        self, manifest: DatasetManifest, columns: Sequence[str], size: int
    ) -> Iterator[list[dict[str, Any]]]:
        for data_file in manifest.files:
            info, stream = self.store.open_read(self.bucket, data_file.key)
            with stream:
                table_bytes = stream.read_all()
            parquet = pq.ParquetFile(pa.BufferReader(table_bytes))
            for batch in parquet.iter_batches(batch_size=size, columns=list(columns)):
                rows = batch.to_pylist()
                if any(row[columns[0]] in (None, "") for row in rows):
                    raise UnprocessableEntity(
                        f"id column {columns[0]!r} has empty values in {info.key}"
                    )
                yield rows
