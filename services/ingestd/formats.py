"""The three upload formats, read in bounded batches (SPEC §4, ingestd).

Every source is read twice, never whole:

1. `scan()` checks that the file can be read at all and works out its columns: for CSV a raw
   pass (empty file, NUL bytes, UTF-8), a strict structural pass with Python's `csv` module
   (bad quoting, wrong field counts — pyarrow's reader is lenient about both) and a pass over
   pyarrow text batches inferring each column's type from *every* row; for JSONL one pass parsing
   line-aligned chunks and merging their inferred types; for Parquet just the footer.
2. `batches()` yields the rows again as Arrow batches in their *native* types (all text for CSV,
   the merged JSON types, the file's types for Parquet), `(first_row, batch)` with 0-based
   `first_row`, for `convert.convert_batch` to cast.

Problems found here are `Unreadable` (answered 400) or `schema.SchemaRejected` (422), each with
`{row, column, reason}` entries; rows are 1-based data rows (the CSV header is not a row; blank
lines are not rows).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from lakehouse_common.contracts.ingest import IngestErrorDetail, IngestFormat
from services.ingestd.convert import ErrorLog
from services.ingestd.schema import (
    SchemaRejected,
    TextTypeInference,
    UploadColumn,
    column_name_errors,
)
from services.ingestd.typenames import UnsupportedType, normalize_type

READ_CHUNK = 1024 * 1024
MIN_BLOCK = 256 * 1024
MAX_BLOCK = 256 * 1024 * 1024
# pyarrow's streaming CSV reader reads dozens of blocks ahead of its consumer (measured: ~40), so
# the block size, not `batch_rows`, is what bounds its memory: 1 MiB blocks peak at ~45 MB of
# Arrow memory whatever the file size, where ~10 MiB blocks held a 220 MB file whole.
# `PartWriter` regroups the small batches into row groups of `batch_rows` rows.
CSV_BLOCK = 1024 * 1024
# The largest CSV field accepted (Python's default of 128 KiB is too small for free text).
CSV_FIELD_LIMIT = 16 * 1024 * 1024


class Unreadable(Exception):
    """The upload cannot be parsed as its format (answered 400)."""

    def __init__(self, message: str, errors: list[IngestErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or [IngestErrorDetail(row=None, column=None, reason=message)]
        self.truncated = False


def _block_size(total_bytes: int, rows: int, batch_rows: int) -> int:
    """Bytes per read block so that a block holds about `batch_rows` rows."""
    per_row = total_bytes / max(rows, 1)
    return int(min(max(per_row * batch_rows * 1.1, MIN_BLOCK), MAX_BLOCK))


class Source(ABC):
    """A spooled upload of one format."""

    format: IngestFormat

    def __init__(self, path: Path, *, batch_rows: int, max_errors: int) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self.max_errors = max_errors
        self.rows = 0

    @abstractmethod
    def scan(self) -> list[UploadColumn]:
        """Check the whole file and describe its columns (first pass; converts nothing)."""

    @abstractmethod
    def batches(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        """The rows in native types, `(first_row, batch)` (second pass; after `scan`)."""

    def _size(self) -> int:
        size = self.path.stat().st_size
        if size == 0:
            raise Unreadable(f"the file is empty (0 bytes): not a {self.format.upper()} file")
        return size


# -- CSV ---------------------------------------------------------------------------------------


class CsvSource(Source):
    format: IngestFormat = "csv"

    def __init__(self, path: Path, *, batch_rows: int, max_errors: int) -> None:
        super().__init__(path, batch_rows=batch_rows, max_errors=max_errors)
        self.header: list[str] = []
        self.block_size = CSV_BLOCK

    def scan(self) -> list[UploadColumn]:
        self._check_bytes()
        self._check_structure()
        names = column_name_errors(self.header)
        if names:
            raise SchemaRejected(names)
        while True:
            inference = TextTypeInference(self.header)
            seen = 0
            try:
                for _, batch in self.batches():
                    inference.observe(batch)
                    seen += batch.num_rows
                break
            except Unreadable as exc:
                # A record longer than a block: retry with bigger blocks (rare: huge fields).
                if "straddl" not in exc.message or self.block_size >= MAX_BLOCK:
                    raise
                self.block_size = min(self.block_size * 4, MAX_BLOCK)
        if seen != self.rows:
            raise Unreadable(
                f"the CSV file reads as {self.rows} rows and as {seen} rows depending on the "
                "parser; check its quoting"
            )
        types = inference.result()
        return [UploadColumn(name, pa.string(), types[name]) for name in self.header]

    def _check_bytes(self) -> None:
        """Empty file, NUL bytes (binary data) and invalid UTF-8, with the byte and line."""
        self._size()
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        lines = 1
        with self.path.open("rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                nul = chunk.find(b"\x00")
                if nul >= 0:
                    line = lines + chunk.count(b"\n", 0, nul)
                    raise Unreadable(
                        f"binary data, not CSV text: NUL byte at byte {offset + nul} (line {line})"
                    )
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = max(exc.start - pending, 0)
                    line = lines + chunk.count(b"\n", 0, at)
                    raise Unreadable(
                        f"not UTF-8 text: invalid byte at byte {offset + at} (line {line})"
                    ) from None
                lines += chunk.count(b"\n")
                offset += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise Unreadable("not UTF-8 text: the file ends inside a character") from None

    def _check_structure(self) -> None:
        """Strict quoting and one field per column in every record (Python's csv module)."""
        csv.field_size_limit(CSV_FIELD_LIMIT)
        errors = ErrorLog(self.max_errors)
        rows = 0
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            try:
                header = next((r for r in reader if r), None)
            except csv.Error as exc:
                raise Unreadable(f"malformed CSV header: {exc} (line {reader.line_num})") from None
            if header is None:
                raise Unreadable("the file has no header line: not a CSV file")
            try:
                for record in reader:
                    if not record:
                        continue  # blank line, skipped by every reader
                    rows += 1
                    if len(record) != len(header):
                        errors.add(
                            rows,
                            None,
                            f"expected {len(header)} fields, found {len(record)} "
                            f"(line {reader.line_num})",
                        )
                        if errors.full:
                            errors.truncated = True
                            break
            except csv.Error as exc:
                errors.add(rows + 1, None, f"malformed CSV: {exc} (line {reader.line_num})")
        if errors:
            error = Unreadable("the CSV file cannot be parsed", errors.errors)
            error.truncated = errors.truncated
            raise error
        if rows == 0:
            raise Unreadable("the CSV file has a header but no data rows")
        self.header = header
        self.rows = rows

    def batches(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        try:
            reader = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(block_size=self.block_size),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.string() for name in self.header},
                    null_values=[""],  # an empty field is missing; "NA", "null" are text
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            first = 0
            with reader:
                for batch in reader:
                    yield first, batch
                    first += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise Unreadable(f"the CSV file cannot be read: {exc}") from None


# -- JSONL -------------------------------------------------------------------------------------

_ROW = re.compile(r" in row (\d+)")
_CHANGED = re.compile(r"Column\(([^)]*)\) changed from (\w+) to (\w+)")


def _textify(t: pa.DataType) -> pa.DataType:
    """JSON has no timestamps: keep strings pyarrow took for timestamps as the text they are."""
    if pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_list(t):
        return pa.list_(_textify(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _textify(f.type)) for f in t])
    return t


def _merge(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The type holding both JSON-inferred types, or None when they conflict."""
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    numbers = (pa.int64(), pa.float64())
    if a in numbers and b in numbers:
        return pa.float64()
    if pa.types.is_list(a) and pa.types.is_list(b):
        item = _merge(a.value_type, b.value_type)
        return None if item is None else pa.list_(item)
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields = {f.name: f.type for f in a}
        for f in b:
            if f.name in fields:
                merged = _merge(fields[f.name], f.type)
                if merged is None:
                    return None
                fields[f.name] = merged
            else:
                fields[f.name] = f.type
        return pa.struct([pa.field(name, t) for name, t in fields.items()])
    return None


def _json_kind(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "object"
    if pa.types.is_list(t):
        return "array"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    return "string"


class JsonlSource(Source):
    format: IngestFormat = "jsonl"

    def __init__(self, path: Path, *, batch_rows: int, max_errors: int) -> None:
        super().__init__(path, batch_rows=batch_rows, max_errors=max_errors)
        self.chunk_bytes = MIN_BLOCK
        self.schema = pa.schema([])

    def _estimate_chunk_bytes(self) -> int:
        with self.path.open("rb") as fh:
            head = fh.read(READ_CHUNK)
        lines = max(head.count(b"\n"), 1)
        return _block_size(len(head), lines, self.batch_rows)

    def _chunks(self) -> Iterator[bytes]:
        """Line-aligned pieces of the file, about `chunk_bytes` each (a longer line is whole)."""
        carry = b""
        with self.path.open("rb") as fh:
            while True:
                data = fh.read(self.chunk_bytes)
                if not data:
                    if carry.strip():
                        yield carry
                    return
                buf = carry + data
                cut = buf.rfind(b"\n")
                if cut < 0:
                    carry = buf
                    continue
                yield buf[: cut + 1]
                carry = buf[cut + 1 :]

    def _parse(
        self, chunk: bytes, first: int, schema: pa.Schema | None, errors: ErrorLog | None = None
    ) -> pa.Table | None:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            row = first + sum(1 for line in chunk[: exc.start].split(b"\n") if line.strip())
            raise Unreadable(
                "not UTF-8 text",
                [IngestErrorDetail(row=row, column=None, reason="invalid UTF-8 byte")],
            ) from None
        try:
            table: pa.Table = pa_json.read_json(
                io.BytesIO(chunk),
                read_options=pa_json.ReadOptions(
                    use_threads=False, block_size=max(len(chunk) + 1, MIN_BLOCK)
                ),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=schema,
                    newlines_in_values=False,
                    unexpected_field_behavior="infer" if schema is None else "error",
                ),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            self._reject(str(exc), first, errors)
            return None
        return table

    def _reject(self, message: str, first: int, errors: ErrorLog | None) -> None:
        message = message.removeprefix("JSON parse error: ")
        found = _ROW.search(message)
        row = first + int(found.group(1)) + 1 if found else None
        reason = _ROW.sub("", message).strip()
        changed = _CHANGED.search(message)
        if changed is not None and changed.group(1) and errors is not None:
            path, before, after = changed.groups()
            column = path.split("/")[1]
            errors.add(
                row, column, f"{after} value where earlier rows hold {before} values ({path})"
            )
            return
        if changed is not None and not changed.group(1):
            reason = f"each line must be a JSON object, found {changed.group(3)}"
        raise Unreadable(
            "the JSONL file cannot be parsed",
            [IngestErrorDetail(row=row, column=None, reason=reason)],
        )

    def scan(self) -> list[UploadColumn]:
        self._size()
        self.chunk_bytes = self._estimate_chunk_bytes()
        errors = ErrorLog(self.max_errors)
        types: dict[str, pa.DataType] = {}
        rows = 0
        for chunk in self._chunks():
            table = self._parse(chunk, rows, None, errors)
            if table is None:  # a type change inside the chunk: recorded; skip its rows
                rows += sum(1 for line in chunk.split(b"\n") if line.strip())
            else:
                for name, column in zip(table.column_names, table.columns, strict=True):
                    t = _textify(column.type)
                    known = types.get(name)
                    merged = t if known is None else _merge(known, t)
                    if merged is None:
                        assert known is not None
                        valid = column.is_valid()
                        first_value = pc.index(valid, True).as_py()
                        errors.add(
                            rows + first_value + 1,
                            name,
                            f"{_json_kind(t)} value where earlier rows hold "
                            f"{_json_kind(known)} values",
                        )
                    else:
                        types[name] = merged
                rows += table.num_rows
            if errors.full:
                errors.truncated = True
                break
        if errors:
            rejected = SchemaRejected(errors.errors)
            raise rejected
        if rows == 0:
            raise Unreadable("the JSONL file holds no rows (only blank lines)")
        self.rows = rows
        self.schema = pa.schema([pa.field(name, t) for name, t in types.items()])
        return [_column_of(name, t) for name, t in types.items()]

    def batches(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        first = 0
        for chunk in self._chunks():
            table = self._parse(chunk, first, self.schema)
            assert table is not None
            for batch in table.to_batches(max_chunksize=self.batch_rows):
                yield first, batch
                first += batch.num_rows


# -- Parquet -----------------------------------------------------------------------------------


class ParquetSource(Source):
    format: IngestFormat = "parquet"

    def _open(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise Unreadable(f"not a readable Parquet file: {exc}") from None

    def scan(self) -> list[UploadColumn]:
        self._size()
        with self._open() as pf:
            schema = pf.schema_arrow
            rows = pf.metadata.num_rows
        names = column_name_errors(schema.names)
        if names:
            raise SchemaRejected(names)
        if rows == 0:
            raise Unreadable("the Parquet file holds no rows")
        self.rows = rows
        return [_column_of(field.name, field.type) for field in schema]

    def batches(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        first = 0
        with self._open() as pf:
            try:
                for batch in pf.iter_batches(batch_size=self.batch_rows):
                    yield first, batch
                    first += batch.num_rows
            except (pa.ArrowException, OSError) as exc:
                raise Unreadable(
                    "the Parquet file is corrupt",
                    [
                        IngestErrorDetail(
                            row=first + 1, column=None, reason=f"unreadable data: {exc}"
                        )
                    ],
                ) from None


def _column_of(name: str, native: pa.DataType) -> UploadColumn:
    try:
        return UploadColumn(name, native, normalize_type(native))
    except UnsupportedType as exc:
        return UploadColumn(name, native, None, f"unsupported type: {exc}")


SOURCES: dict[str, type[Source]] = {
    "csv": CsvSource,
    "jsonl": JsonlSource,
    "parquet": ParquetSource,
}


def open_source(fmt: IngestFormat, path: Path, *, batch_rows: int, max_errors: int) -> Source:
    return SOURCES[fmt](path, batch_rows=batch_rows, max_errors=max_errors)
