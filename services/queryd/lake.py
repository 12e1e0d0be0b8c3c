"""The lake's data as Arrow objects DuckDB can scan (SPEC §4, queryd).

- A dataset version becomes a `pyarrow.dataset.Dataset` over its Parquet files where they lie:
  local paths for the fs Store (`<data_dir>/objects/<bucket>/<key>`), `bucket/key` paths on a
  `pyarrow.fs.S3FileSystem` for the S3 Store. Building one reads only the first file's footer;
  DuckDB then scans it lazily with projection and filter pushdown, so S3 objects are read in
  ranges at query time and never copied whole to local disk. (DuckDB's httpfs extension would
  need a download; pyarrow's S3 client is already here — and it lets the database run with
  external access off.)
- A JSON-lines file (observer streams, session logs) becomes a `pyarrow.Table`: one column per
  key seen, in first-seen order, plus `_line` (and `_file` for sessions) so a row can be traced
  to its line. Malformed lines and lines that are not JSON objects are skipped and counted; a key
  whose values do not share one Arrow type keeps them as JSON text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import orjson
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.catalog import DatasetManifest
from lakehouse_common.errors import InvalidInput
from lakehouse_common.store import FsStore, S3Store, Store, validate_key

# Columns queryd adds to JSON-lines views (a record's own key of the same name wins).
LINE_COLUMN = "_line"
FILE_COLUMN = "_file"


class LakeFiles:
    """Where the default bucket's objects are, as a pyarrow filesystem and paths on it."""

    def __init__(self, filesystem: pafs.FileSystem, path_of: Callable[[str], str]) -> None:
        self.filesystem = filesystem
        self._path_of = path_of
        # Only turns a manifest's schema into an empty table's; never sees a query.
        self._types = duckdb.connect(":memory:", config={"enable_external_access": False})

    @classmethod
    def from_settings(cls, settings: LakehouseSettings, store: Store) -> LakeFiles:
        bucket = settings.storage.default_bucket
        if isinstance(store, FsStore):
            return cls(pafs.LocalFileSystem(), lambda key: str(store.path_of(bucket, key)))
        if isinstance(store, S3Store):
            physical = store.physical_bucket(bucket)

            def s3_path(key: str) -> str:
                validate_key(key)
                return f"{physical}/{key}"

            return cls(s3_filesystem(settings), s3_path)
        raise TypeError(f"queryd cannot read datasets from a {type(store).__name__}")

    def path_of(self, key: str) -> str:
        return self._path_of(key)

    def dataset(self, manifest: DatasetManifest) -> Any:
        """An Arrow dataset over a version's files (an empty table when it has none)."""
        if not manifest.files:
            return self.empty_table(manifest)
        paths = [self.path_of(f.key) for f in manifest.files]
        return pads.dataset(paths, filesystem=self.filesystem, format="parquet")

    def empty_table(self, manifest: DatasetManifest) -> pa.Table:
        columns = []
        for field in manifest.schema_:
            try:
                sql_type = str(self._types.sqltype(field.type))
            except duckdb.Error as exc:
                raise InvalidInput(f"column {field.name!r}: unknown type {field.type!r}") from exc
            name = field.name.replace('"', '""')
            columns.append(f'NULL::{sql_type} AS "{name}"')
        if not columns:
            raise InvalidInput(f"dataset {manifest.name!r} v{manifest.version} has no columns")
        table: pa.Table = self._types.sql(f"SELECT {', '.join(columns)} LIMIT 0").to_arrow_table()
        return table

    def close(self) -> None:
        self._types.close()


def s3_filesystem(settings: LakehouseSettings) -> pafs.S3FileSystem:
    """pyarrow's S3 client configured like the S3 Store (`[storage.s3]`)."""
    s3 = settings.storage.s3
    options: dict[str, Any] = {
        "region": s3.region,
        "connect_timeout": settings.client.connect_timeout_s,
        "request_timeout": settings.client.timeout_s,
        "allow_bucket_creation": False,
        "allow_bucket_deletion": False,
    }
    if s3.endpoint_url:
        url = urlsplit(s3.endpoint_url)
        options["endpoint_override"] = url.netloc or url.path
        options["scheme"] = url.scheme or "https"
    access_key = os.environ.get(s3.access_key_env)
    secret_key = os.environ.get(s3.secret_key_env)
    if access_key and secret_key:
        options["access_key"] = access_key
        options["secret_key"] = secret_key
    return pafs.S3FileSystem(**options)


@dataclass(frozen=True)
class JsonLines:
    """A JSON-lines source read into a table, with what had to be skipped."""

    table: pa.Table
    skipped: int


@dataclass
class _Parsed:
    records: list[dict[str, Any]]
    skipped: int
    lines: int  # lines consumed, blank ones included


def _parse(data: bytes, *, first_line: int, file_name: str | None) -> _Parsed:
    records: list[dict[str, Any]] = []
    skipped = 0
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=first_line):
        line = raw.strip()
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(value, dict):
            skipped += 1
            continue
        value.setdefault(LINE_COLUMN, number)
        if file_name is not None:
            value.setdefault(FILE_COLUMN, file_name)
        records.append(value)
    return _Parsed(records, skipped, len(raw_lines))


def _records_table(
    records: list[dict[str, Any]], *, with_file: bool, as_text: frozenset[str] = frozenset()
) -> tuple[pa.Table, set[str]]:
    """Columns in first-seen key order, and the keys kept as JSON text (those in `as_text`, and
    those whose values share no Arrow type). A column with no value at all keeps Arrow's null
    type here (so later lines can give it one); `view_table` makes it text."""
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    keys.setdefault(LINE_COLUMN)
    if with_file:
        keys.setdefault(FILE_COLUMN)
    texts: set[str] = set()
    if not records:
        arrays = [pa.array([], pa.string() if key == FILE_COLUMN else pa.int64()) for key in keys]
    else:
        arrays = []
        for key in keys:
            array, is_text = _column([record.get(key) for record in records], key in as_text)
            arrays.append(array)
            if is_text:
                texts.add(key)
    return pa.Table.from_arrays(arrays, names=list(keys)), texts


def view_table(table: pa.Table) -> pa.Table:
    """`table` as DuckDB should see it: columns that never had a value are text."""
    for i, column_field in enumerate(table.schema):
        if pa.types.is_null(column_field.type):
            table = table.set_column(
                i, column_field.name, pa.nulls(table.num_rows, type=pa.string())
            )
    return table


def _concat(tables: Sequence[pa.Table]) -> pa.Table | None:
    """One table from several with compatible schemas (new columns are null-filled earlier;
    null columns take the other side's type); None when a column's types conflict."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, TypeError, ValueError):
        return None


def read_json_lines(paths: Sequence[Path], *, with_file: bool = False) -> JsonLines:
    """Read JSON-object lines from `paths` into one table (see the module docstring)."""
    records: list[dict[str, Any]] = []
    skipped = 0
    for path in paths:
        parsed = _parse(path.read_bytes(), first_line=1, file_name=path.name if with_file else None)
        records.extend(parsed.records)
        skipped += parsed.skipped
    table, _ = _records_table(records, with_file=with_file)
    return JsonLines(view_table(table), skipped)


class JsonLinesFile:
    """An append-only JSON-lines file read incrementally.

    Complete lines are parsed once: a refresh reads only the bytes appended since the last one
    and appends their rows. A trailing line without its newline yet is parsed on every refresh
    but never committed, so a line caught half-written is not lost. A file replaced (new inode)
    or truncated is read again from the start, and so is the whole file when appended lines give
    a key a type that conflicts with its earlier one; from then on that key is JSON text.
    """

    def __init__(self, path: Path, *, with_file: bool = False) -> None:
        self.path = path
        self.with_file = with_file
        self._name = path.name if with_file else None
        self._stat: tuple[int, int, int] | None = None  # (inode, size, mtime_ns)
        self._offset = 0  # bytes of complete lines committed
        self._lines = 0
        self._committed: pa.Table | None = None
        self._as_text: frozenset[str] = frozenset()
        self.skipped = 0
        # `raw` keeps never-valued columns null-typed (to merge with other files); `table` is
        # what DuckDB sees.
        self.raw: pa.Table = _records_table([], with_file=with_file)[0]
        self.table: pa.Table = view_table(self.raw)

    def refresh(self) -> bool:
        """Read what changed; True when `table` changed."""
        st = self.path.stat()
        current = (st.st_ino, st.st_size, st.st_mtime_ns)
        if current == self._stat:
            return False
        if self._stat is None or st.st_ino != self._stat[0] or st.st_size < self._offset:
            self._reset()
        self._stat = current
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        cut = data.rfind(b"\n") + 1
        complete = _parse(data[:cut], first_line=self._lines + 1, file_name=self._name)
        committed = self._committed
        if complete.records:
            committed = self._append(committed, complete.records)
            if committed is None:
                return self._read_whole()
        tail = _parse(data[cut:], first_line=self._lines + complete.lines + 1, file_name=self._name)
        table = committed
        if tail.records:
            table = self._append(committed, tail.records)
            if table is None:
                return self._read_whole()
        self._committed = committed
        self._offset += cut
        self._lines += complete.lines
        self.skipped += complete.skipped
        if table is None:
            table = _records_table([], with_file=self.with_file)[0]
        self.raw, self.table = table, view_table(table)
        return True

    def _append(self, base: pa.Table | None, records: list[dict[str, Any]]) -> pa.Table | None:
        """`base` with `records` appended; None when their types conflict with base's."""
        chunk, texts = _records_table(records, with_file=self.with_file, as_text=self._as_text)
        if base is None:
            self._as_text = self._as_text | texts
            return chunk
        if (texts - self._as_text) & set(base.column_names):
            return None  # a key earlier rows hold as values is text now: read it all again
        self._as_text = self._as_text | texts
        return _concat([base, chunk])

    def _reset(self) -> None:
        self._offset = 0
        self._lines = 0
        self._committed = None
        self._as_text = frozenset()
        self.skipped = 0

    def _read_whole(self) -> bool:
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        complete = _parse(data[:cut], first_line=1, file_name=self._name)
        tail = _parse(data[cut:], first_line=complete.lines + 1, file_name=self._name)
        whole, texts = _records_table(complete.records + tail.records, with_file=self.with_file)
        self._as_text = frozenset(texts)
        self._committed, _ = _records_table(
            complete.records, with_file=self.with_file, as_text=self._as_text
        )
        self._offset, self._lines, self.skipped = cut, complete.lines, complete.skipped
        self.raw, self.table = whole, view_table(whole)
        return True


def _column(values: list[Any], as_text: bool = False) -> tuple[pa.Array, bool]:
    """An Arrow array of `values`, or their JSON text when they share no type DuckDB reads
    (or `as_text`); the flag says which."""
    array = None
    if not as_text:
        try:
            array = pa.array(values)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            array = None
    if array is not None and (pa.types.is_null(array.type) or _scannable(array.type)):
        return array, False
    texts = [None if v is None else orjson.dumps(v).decode() for v in values]
    return pa.array(texts, type=pa.string()), True


def _scannable(arrow_type: pa.DataType) -> bool:
    """Types DuckDB reads back sensibly: no null-typed values, no empty structs."""
    if pa.types.is_null(arrow_type):
        return False
    if pa.types.is_struct(arrow_type):
        fields = [arrow_type.field(i) for i in range(arrow_type.num_fields)]
        return bool(fields) and all(_scannable(f.type) for f in fields)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _scannable(arrow_type.value_type)
    return True
