"""A version's Parquet parts in the Store: written, copied, and taken back (SPEC §4, ingestd).

Parts are `datasets/{name}/v{n}/part-NNNNN.parquet` in the default bucket (`part_key`). Each is
written by a `ParquetWriter` straight into a Store staging file (never a second local copy),
published create-only, and remembered by `VersionParts` so that a failed attempt deletes
exactly what it wrote. Nothing here is visible to readers until catalogd commits the manifest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse_common.contracts.catalog import DataFile, data_prefix, part_key
from lakehouse_common.errors import LakehouseError, NotFound
from lakehouse_common.logging import get_logger
from lakehouse_common.store import ObjectInfo, StagedObject, Store

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
_LIST_PAGE = 1000

log = get_logger("lakehouse.ingest")


class _StagedSink:
    """The file object `ParquetWriter` writes to: a Store staging file (hashed as it goes)."""

    def __init__(self, staged: StagedObject) -> None:
        self.staged = staged
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        self.staged.write(data)
        return len(data)

    def tell(self) -> int:
        return self.staged.size

    def flush(self) -> None:
        """Nothing buffered here; `Store.commit` fsyncs."""

    def close(self) -> None:
        self.closed = True  # the staged object lives on until it is committed or aborted


class VersionParts:
    """The objects one ingest attempt put under `datasets/{dataset}/v{version}/`."""

    def __init__(self, store: Store, bucket: str, dataset: str, version: int) -> None:
        self.store = store
        self.bucket = bucket
        self.dataset = dataset
        self.version = version
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def key(self, part: int) -> str:
        return part_key(self.dataset, self.version, part)

    def remove_leftovers(self) -> int:
        """Delete whatever an interrupted ingest left under this (uncommitted) version's prefix.

        Only called for version latest + 1 while this process holds the dataset's lock, so the
        objects there belong to no version and to no running ingest of ours.
        """
        prefix = data_prefix(self.dataset, self.version)
        removed = 0
        while True:
            page = self.store.list(self.bucket, prefix=prefix, limit=_LIST_PAGE)
            if not page.objects:
                break
            for info in page.objects:
                try:
                    self.store.delete(self.bucket, info.key)
                    removed += 1
                except NotFound:
                    pass
            if page.next_cursor is None:
                break
        if removed:
            log.warning("removed leftover parts", dataset=self.dataset, prefix=prefix, n=removed)
        return removed

    def commit(self, staged: StagedObject, part: int) -> ObjectInfo:
        key = self.key(part)
        with self._lock:
            self.keys.append(key)  # before the commit: a half-known outcome is still cleaned up
        return self.store.commit(
            staged, self.bucket, key, create_only=True, content_type=PARQUET_MEDIA_TYPE
        )

    def copy(self, source: DataFile, part: int) -> DataFile:
        """Copy a previous version's file byte for byte as this version's part `part`."""
        try:
            info, stream = self.store.open_read(self.bucket, source.key)
        except NotFound:
            # Not the client's 404: the previous version's data is gone from under the catalog.
            raise LakehouseError(
                f"file {source.key} of the previous version is missing from the store"
            ) from None
        with stream, self.store.stage() as staged:
            for chunk in stream:
                staged.write(chunk)
            written = self.commit(staged, part)
        if written.etag != info.etag:
            raise LakehouseError(f"copy of {source.key} does not match its source")
        return DataFile(key=written.key, rows=source.rows, bytes=written.size, sha256=written.etag)

    def delete(self, keep: Iterable[str] = ()) -> None:
        """Delete what this attempt wrote (except `keep`); a failure is logged, not raised —
        the next ingest of the dataset removes leftovers anyway."""
        spared = set(keep)
        with self._lock:
            keys, self.keys = self.keys, []
        for key in keys:
            if key in spared:
                continue
            try:
                self.store.delete(self.bucket, key)
            except NotFound:
                pass
            except LakehouseError as exc:
                log.warning("could not delete part", key=key, error=exc.message)


class PartWriter:
    """Batches in, `part-NNNNN.parquet` files out: `batch_rows` rows per row group,
    `rows_per_file` rows per file, zstd; at most one row group of rows held in memory."""

    def __init__(
        self,
        parts: VersionParts,
        schema: pa.Schema,
        *,
        first_part: int,
        rows_per_file: int,
        batch_rows: int,
        zstd_level: int,
    ) -> None:
        self.parts = parts
        self.schema = schema
        self.part = first_part
        self.rows_per_file = rows_per_file
        self.batch_rows = batch_rows
        self.zstd_level = zstd_level
        self.files: list[DataFile] = []
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._file_rows = 0
        self._staged: StagedObject | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None:
                self._open()
            room = self.rows_per_file - self._file_rows - self._pending_rows
            take = min(room, batch.num_rows - offset)
            self._pending.append(batch.slice(offset, take))
            self._pending_rows += take
            offset += take
            if self._pending_rows >= self.batch_rows:
                self._flush()
            if self._file_rows + self._pending_rows >= self.rows_per_file:
                self._close_file()

    def finish(self) -> list[DataFile]:
        if self._writer is not None:
            self._close_file()
        return self.files

    def abort(self) -> None:
        """Drop the file being written (the ones already published are `VersionParts`')."""
        self._pending = []
        self._pending_rows = 0
        writer, staged = self._writer, self._staged
        self._writer = self._staged = None
        if writer is not None:
            try:
                writer.close()
            except (pa.ArrowException, OSError, ValueError):
                pass
        if staged is not None:
            staged.abort()

    def _open(self) -> None:
        self._staged = self.parts.store.stage()
        self._writer = pq.ParquetWriter(
            _StagedSink(self._staged),
            self.schema,
            compression="zstd",
            compression_level=self.zstd_level,
        )
        self._file_rows = 0

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        assert self._writer is not None
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=self.batch_rows)
        self._file_rows += self._pending_rows
        self.rows += self._pending_rows
        self._pending = []
        self._pending_rows = 0

    def _close_file(self) -> None:
        self._flush()
        writer, staged = self._writer, self._staged
        assert writer is not None and staged is not None
        self._writer = self._staged = None
        try:
            writer.close()
        except BaseException:
            staged.abort()
            raise
        info = self.parts.commit(staged, self.part)
        self.files.append(
            DataFile(key=info.key, rows=self._file_rows, bytes=info.size, sha256=info.etag)
        )
        self.part += 1
        self._file_rows = 0
