"""Ingest: a spooled upload becomes the next version of a dataset, or nothing (SPEC §4, ingestd).

One ingest:

1. the request body (or a Store object) is spooled to a local file under
   `<data_dir>/ingest/spool/` — never held in memory;
2. `Source.scan()` checks the whole file and infers its columns (400/422 before any write);
3. holding the dataset's lock: read the latest version from catalogd, plan the new version's
   columns (`schema.plan_columns`), convert batch by batch and write the parts of version
   n = latest + 1 (`parts.PartWriter`); in `append` mode copy the previous version's files in
   too; a row error stops the writing, the scan goes on to report up to
   `ingest.max_reported_errors` problems, and the parts written so far are deleted (422);
4. commit the manifest to catalogd last. A 409 (someone else committed n meanwhile) deletes
   this attempt's parts and starts again from 3 against the new latest version — re-validated,
   because the schema it must match may have changed — up to `COMMIT_ATTEMPTS` times, then
   answers 409.

Any failure deletes the attempt's parts, so a rejected ingest leaves the catalog and the
`datasets/` prefix as they were. The one exception is a commit whose outcome is unknown
(catalogd unreachable mid-request): the parts stay until it is known, since deleting them could
break a version catalogd did commit; the next ingest of the dataset removes them if not.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lakehouse_common.config import IngestSettings
from lakehouse_common.contracts.catalog import (
    DataFile,
    DatasetDetail,
    DatasetManifest,
    VersionCommit,
)
from lakehouse_common.contracts.ingest import IngestFormat, IngestMode
from lakehouse_common.errors import (
    Conflict,
    InvalidInput,
    LakehouseError,
    NotFound,
    UnprocessableEntity,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from lakehouse_common.logging import get_logger
from lakehouse_common.store import StagedObject, Store
from lakehouse_common.store.base import remove_stale_staged
from services.ingestd.convert import ErrorLog, convert_batch
from services.ingestd.formats import Source, Unreadable, open_source
from services.ingestd.parts import PartWriter, VersionParts
from services.ingestd.schema import Plan, SchemaRejected, UploadColumn, plan_columns

# Attempts at committing a version when catalogd answers 409 (a concurrent commit won).
COMMIT_ATTEMPTS = 3
# Ingests converting at the same time: each holds about one row group per column in memory.
CONVERSION_SLOTS = 2
SPOOL_WRITE_BYTES = 1024 * 1024

log = get_logger("lakehouse.ingest")


class CatalogPort(Protocol):
    """What ingest needs from catalogd (`CatalogClient` is one; tests pass fakes)."""

    async def get_dataset(self, name: str) -> DatasetDetail: ...

    async def get_version(self, name: str, version: int) -> DatasetManifest: ...

    async def commit_version(self, name: str, commit: VersionCommit) -> DatasetManifest: ...


@dataclass(frozen=True)
class IngestOptions:
    dataset: str
    format: IngestFormat
    mode: IngestMode = "replace"
    required: tuple[str, ...] = ()
    # Where the rows came from, for the manifest's `source` (`filename`, or `bucket` + `key`).
    origin: dict[str, Any] = field(default_factory=dict)


class _Cancelled(Exception):
    """The request went away while its conversion ran in a worker thread."""


class _KeyedLocks:
    """One asyncio lock per dataset name, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _rejected(cls: type[LakehouseError], message: str, errors: ErrorLog) -> LakehouseError:
    first = errors.errors[0] if errors.errors else None
    if first is not None and not (len(errors) == 1 and first.reason == message):
        where = [f"row {first.row}" if first.row else "", first.column or ""]
        place = ", ".join(p for p in where if p)
        message = f"{message}: {place + ': ' if place else ''}{first.reason}"
        if len(errors) > 1 or errors.truncated:
            more = f"{len(errors) - 1}{'+' if errors.truncated else ''}"
            message += f" (and {more} more)"
    return cls(message, details=errors.details())


def unreadable_error(exc: Unreadable, limit: int) -> LakehouseError:
    errors = ErrorLog(limit)
    errors.extend(exc.errors)
    errors.truncated = errors.truncated or exc.truncated
    return _rejected(InvalidInput, exc.message, errors)


def schema_error(exc: SchemaRejected, limit: int) -> LakehouseError:
    errors = ErrorLog(limit)
    errors.extend(exc.errors)
    return _rejected(UnprocessableEntity, "the rows do not fit the dataset", errors)


class IngestService:
    """Spools uploads and turns them into dataset versions; see the module docstring."""

    def __init__(
        self,
        store: Store,
        catalog: CatalogPort,
        settings: IngestSettings,
        *,
        bucket: str,
        spool_dir: Path,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self.bucket = bucket
        self.spool_dir = spool_dir
        self._locks = _KeyedLocks()
        self._slots = asyncio.Semaphore(CONVERSION_SLOTS)

    # -- spooling ----------------------------------------------------------------------------

    def clean_spool(self) -> int:
        """Remove spool files of crashed requests (not locked by a live one)."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        return remove_stale_staged(self.spool_dir)

    def _new_spool(self) -> StagedObject:
        return StagedObject(self.spool_dir, owner=self)

    async def spool_stream(self, chunks: AsyncIterator[bytes]) -> StagedObject:
        """Stream a request body to a spool file (sealed; the caller aborts it when done)."""
        spool = await asyncio.to_thread(self._new_spool)
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= SPOOL_WRITE_BYTES:
                    await asyncio.to_thread(spool.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(spool.write, bytes(buffer))
            await asyncio.to_thread(spool.seal)
        except BaseException:
            spool.abort()
            raise
        return spool

    def _spool_object_sync(self, bucket: str, key: str) -> StagedObject:
        spool = self._new_spool()
        try:
            _, stream = self.store.open_read(bucket, key)
            with stream:
                for chunk in stream:
                    spool.write(chunk)
            spool.seal()
        except BaseException:
            spool.abort()
            raise
        return spool

    async def spool_object(self, bucket: str, key: str) -> StagedObject:
        """Copy a Store object to a spool file (404 when it does not exist)."""
        return await asyncio.to_thread(self._spool_object_sync, bucket, key)

    # -- ingest ------------------------------------------------------------------------------

    async def ingest(self, spool: StagedObject, options: IngestOptions) -> DatasetManifest:
        """Make `spool` the next version of `options.dataset`; see the module docstring."""
        limit = self.settings.max_reported_errors
        source = open_source(
            options.format, spool.path, batch_rows=self.settings.batch_rows, max_errors=limit
        )
        # A slot is held only while converting, never while waiting for the dataset's lock:
        # ingests queued behind one dataset must not hold up ingests of others.
        async with self._slots:
            try:
                columns = await asyncio.to_thread(source.scan)
            except Unreadable as exc:
                raise unreadable_error(exc, limit) from None
            except SchemaRejected as exc:
                raise schema_error(exc, limit) from None
        async with self._locks.hold(options.dataset), self._slots:
            manifest = await self._commit_new_version(source, columns, spool, options)
        log.info(
            "ingested",
            dataset=manifest.name,
            version=manifest.version,
            rows=manifest.row_count,
            files=len(manifest.files),
            mode=options.mode,
        )
        return manifest

    async def _latest(self, dataset: str) -> DatasetManifest | None:
        try:
            return (await self.catalog.get_dataset(dataset)).latest
        except NotFound:
            return None

    async def _commit_new_version(
        self,
        source: Source,
        columns: Sequence[UploadColumn],
        spool: StagedObject,
        options: IngestOptions,
    ) -> DatasetManifest:
        limit = self.settings.max_reported_errors
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            previous = await self._latest(options.dataset)
            try:
                plan = plan_columns(columns, previous, options.mode, options.required)
            except SchemaRejected as exc:
                raise schema_error(exc, limit) from None
            version = previous.version + 1 if previous is not None else 1
            parts = VersionParts(self.store, self.bucket, options.dataset, version)
            files, rows = await self._write_in_thread(source, plan, parts)
            commit = VersionCommit(
                version=version,
                schema=plan.fields,
                files=files,
                row_count=sum(f.rows for f in files),
                source=self._source_record(options, spool, rows),
            )
            try:
                return await self.catalog.commit_version(options.dataset, commit)
            except Conflict:
                await self._discard(parts)
                log.info(
                    "version committed concurrently; retrying",
                    dataset=options.dataset,
                    version=version,
                    attempt=attempt,
                )
                continue
            except (UpstreamUnavailable, UpstreamTimeout) as exc:
                return await self._settle_unknown_commit(parts, commit, exc)
            except LakehouseError as exc:
                await asyncio.to_thread(parts.delete)
                if exc.status >= 500:
                    raise
                # catalogd refusing a manifest ingestd built is ingestd's (or catalogd's)
                # problem, not the client's: do not answer it as a 4xx about their file.
                raise UpstreamError(
                    f"catalogd refused version {version} of {options.dataset!r}: {exc.message}",
                    details={"daemon": "catalogd", "status": exc.status},
                ) from exc
            except BaseException:
                await asyncio.to_thread(parts.delete)
                raise
        raise Conflict(
            f"dataset {options.dataset!r} changed concurrently {COMMIT_ATTEMPTS} times while "
            "this ingest was committing; nothing was written — retry",
            details={"dataset": options.dataset, "attempts": COMMIT_ATTEMPTS},
        )

    async def _discard(self, parts: VersionParts) -> None:
        """Delete an attempt's parts after a lost commit, sparing any the winner references."""
        keep: list[str] = []
        with contextlib.suppress(LakehouseError):
            winner = await self.catalog.get_version(parts.dataset, parts.version)
            keep = [f.key for f in winner.files]
        await asyncio.to_thread(parts.delete, keep)

    async def _settle_unknown_commit(
        self, parts: VersionParts, commit: VersionCommit, error: LakehouseError
    ) -> DatasetManifest:
        """The commit request failed in flight: it may have been applied. Ask."""
        try:
            committed = await self.catalog.get_version(parts.dataset, parts.version)
        except NotFound:
            await asyncio.to_thread(parts.delete)
            raise error from None
        except LakehouseError:
            log.warning(
                "commit outcome unknown; parts kept until the next ingest",
                dataset=parts.dataset,
                version=parts.version,
            )
            raise error from None
        ours = {f.key: f.sha256 for f in commit.files}
        if {f.key: f.sha256 for f in committed.files} == ours:
            return committed
        await asyncio.to_thread(parts.delete, [f.key for f in committed.files])
        raise Conflict(
            f"version {parts.version} of {parts.dataset!r} was committed by another writer",
            details={"dataset": parts.dataset, "expected_version": parts.version + 1},
        ) from error

    async def _write_in_thread(
        self, source: Source, plan: Plan, parts: VersionParts
    ) -> tuple[list[DataFile], int]:
        """Run `_write_version` in a worker thread; on any failure — or if the request is
        cancelled, once the thread has noticed — delete the parts it wrote."""
        cancel = threading.Event()
        task = asyncio.ensure_future(
            asyncio.to_thread(self._write_version, source, plan, parts, cancel)
        )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            cancel.set()
            with contextlib.suppress(BaseException):
                await task
            await asyncio.to_thread(parts.delete)
            raise
        except BaseException:
            await asyncio.to_thread(parts.delete)
            raise

    def _write_version(
        self, source: Source, plan: Plan, parts: VersionParts, cancel: threading.Event
    ) -> tuple[list[DataFile], int]:
        """Second pass: convert every batch and write the parts; copy the previous files when
        appending. Returns the version's files and the number of rows from the upload."""
        settings = self.settings
        limit = settings.max_reported_errors
        errors = ErrorLog(limit)
        parts.remove_leftovers()
        previous_files = plan.previous.files if plan.appends and plan.previous else []
        writer: PartWriter | None = PartWriter(
            parts,
            plan.schema,
            first_part=len(previous_files),
            rows_per_file=settings.rows_per_file,
            batch_rows=settings.batch_rows,
            zstd_level=settings.zstd_level,
        )
        try:
            for first_row, batch in source.batches():
                if cancel.is_set():
                    raise _Cancelled()
                converted = convert_batch(batch, plan, first_row, errors)
                if converted is None or errors:
                    if writer is not None:
                        writer.abort()  # stop writing; keep scanning to report more rows
                        writer = None
                    if errors.full:
                        errors.truncated = errors.truncated or first_row + batch.num_rows < (
                            source.rows
                        )
                        break
                    continue
                assert writer is not None
                writer.write(converted)
        except Unreadable as exc:
            if writer is not None:
                writer.abort()
            raise unreadable_error(exc, limit) from None
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if errors or writer is None:
            raise _rejected(UnprocessableEntity, "the rows do not fit the dataset", errors)
        new_files = writer.finish()
        copies = [parts.copy(f, part) for part, f in enumerate(previous_files)]
        return copies + new_files, writer.rows

    def _source_record(
        self, options: IngestOptions, spool: StagedObject, rows: int
    ) -> dict[str, Any]:
        record: dict[str, Any] = {"format": options.format, **options.origin}
        record.update(mode=options.mode, bytes=spool.size, sha256=spool.sha256, rows=rows)
        if options.required:
            record["required"] = list(options.required)
        return record
