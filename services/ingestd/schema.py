"""What a new version's columns are: inference, compatibility with the previous version, required
columns (SPEC §4, ingestd: "schema incompatible with the previous version").

Rules, applied before a single row is converted:

- First version: the upload's columns with their natural types (`UploadColumn.natural`).
- `replace` over a previous version: the upload's columns in upload order; a column the
  previous version has keeps its previous type (values are cast to it), a new column gets its
  natural type, a previous column missing from the upload is dropped — unless it is required.
- `append`: exactly the previous version's columns in their order and types; a previous column
  missing from the upload is null in the new rows (unless required); a column the previous
  version does not have is refused (appending cannot add columns — use `replace`).
- Required: the `?required=` columns, plus `id` whenever the upload or the previous version has
  an `id` column (the roster's key): present and non-null in every row.
- A type conflict is an upload column whose values can never convert to the previous type
  (`castable`): e.g. a struct where a number was, a timestamp where a number was. Values that
  *may* convert (text → BIGINT) are checked row by row instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_common.contracts.catalog import DatasetManifest, SchemaField
from lakehouse_common.contracts.ingest import IngestErrorDetail, IngestMode
from services.ingestd.typenames import UnsupportedType, parse_type_name, type_name

KEY_COLUMN = "id"


@dataclass(frozen=True, slots=True)
class UploadColumn:
    """One column of the upload: `native` is the Arrow type its batches arrive in (always
    `string` for CSV), `natural` the type it gets when nothing else decides (None with
    `unsupported` saying why when it cannot be stored)."""

    name: str
    native: pa.DataType
    natural: pa.DataType | None
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class TargetColumn:
    name: str
    type: pa.DataType
    source: str | None  # the upload column it comes from; None → null in every new row
    required: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """The new version's columns, and the previous version the plan was made against."""

    columns: tuple[TargetColumn, ...]
    previous: DatasetManifest | None
    mode: IngestMode

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    @property
    def fields(self) -> list[SchemaField]:
        return [SchemaField(name=c.name, type=type_name(c.type)) for c in self.columns]

    @property
    def appends(self) -> bool:
        return self.mode == "append" and self.previous is not None


def column_name_errors(names: Sequence[str]) -> list[IngestErrorDetail]:
    """Empty and duplicate column names (a dataset is a SQL view: names must be distinct)."""
    errors = []
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            errors.append(IngestErrorDetail(row=None, column=name, reason="empty column name"))
        elif name in seen:
            errors.append(IngestErrorDetail(row=None, column=name, reason="duplicate column name"))
        seen.add(name)
    return errors


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    checks = (
        ("null", pa.types.is_null),
        ("bool", pa.types.is_boolean),
        ("int", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("decimal", pa.types.is_decimal),
        ("string", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)),
        ("binary", lambda x: pa.types.is_binary(x) or pa.types.is_large_binary(x)),
        ("binary", pa.types.is_fixed_size_binary),
        ("date", pa.types.is_date),
        ("time", pa.types.is_time),
        ("timestamp", pa.types.is_timestamp),
        ("list", lambda x: pa.types.is_list(x) or pa.types.is_large_list(x)),
        ("list", pa.types.is_fixed_size_list),
        ("map", pa.types.is_map),
        ("struct", pa.types.is_struct),
    )
    for kind, check in checks:
        if check(t):
            return kind
    if getattr(pa.types, "is_string_view", lambda _: False)(t):
        return "string"
    return "other"


_SCALARS = frozenset({"bool", "int", "float", "decimal", "string", "binary", "date", "time"})
_NUMBERS = frozenset({"int", "float", "decimal"})


def _kinds_compatible(src: pa.DataType, dst: pa.DataType) -> bool:
    s, d = _kind(src), _kind(dst)
    if s == "null":
        return True
    if "other" in (s, d):
        return False
    if s == "string":  # text parses into any scalar; unparseable values are row errors
        return d in _SCALARS or d == "timestamp"
    if d == "string":  # any scalar prints as text without loss
        return s in _SCALARS or s == "timestamp"
    if s in _NUMBERS and d in _NUMBERS:
        return True
    if {s, d} <= {"date", "timestamp"}:
        if s == d == "timestamp":
            return (src.tz is None) == (dst.tz is None)
        return True
    if s != d:
        return False
    if s == "list":
        return _kinds_compatible(src.value_type, dst.value_type)
    if s == "map":
        return _kinds_compatible(src.key_type, dst.key_type) and _kinds_compatible(
            src.item_type, dst.item_type
        )
    if s == "struct":
        if [f.name for f in src] != [f.name for f in dst]:
            return False
        return all(_kinds_compatible(a.type, b.type) for a, b in zip(src, dst, strict=True))
    return True  # same scalar kind: width or unit changes, checked per value


def castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether values of `src` may convert to `dst` (each value is still checked when cast)."""
    if src == dst:
        return True
    if not _kinds_compatible(src, dst):
        return False
    if _kind(src) == "string" and _kind(dst) == "time":
        return True  # not an Arrow cast; `convert.cast_values` parses it
    try:
        pc.cast(pa.array([], src), dst)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def previous_columns(previous: DatasetManifest) -> list[tuple[str, pa.DataType]]:
    """The previous version's columns as Arrow types (422 if its schema cannot be read)."""
    out = []
    for field in previous.schema_:
        try:
            out.append((field.name, parse_type_name(field.type)))
        except UnsupportedType as exc:
            raise SchemaRejected(
                [
                    IngestErrorDetail(
                        row=None,
                        column=field.name,
                        reason=f"version {previous.version} has a type ingestd cannot write: {exc}",
                    )
                ]
            ) from None
    return out


class SchemaRejected(Exception):
    """The upload's columns cannot form the new version (answered 422)."""

    def __init__(self, errors: list[IngestErrorDetail]) -> None:
        super().__init__(f"{len(errors)} schema problem(s)")
        self.errors = errors


def required_columns(
    requested: Iterable[str], upload: Sequence[UploadColumn], previous: DatasetManifest | None
) -> list[str]:
    """The `?required=` columns plus the `id` key rule, in a stable order."""
    names = list(dict.fromkeys(requested))
    has_key = any(c.name == KEY_COLUMN for c in upload) or (
        previous is not None and any(f.name == KEY_COLUMN for f in previous.schema_)
    )
    if has_key and KEY_COLUMN not in names:
        names.insert(0, KEY_COLUMN)
    return names


def plan_columns(
    upload: Sequence[UploadColumn],
    previous: DatasetManifest | None,
    mode: IngestMode,
    requested_required: Iterable[str] = (),
) -> Plan:
    """The new version's columns, or `SchemaRejected` listing every problem found."""
    errors: list[IngestErrorDetail] = []
    required = required_columns(requested_required, upload, previous)
    by_name = {c.name: c for c in upload}
    prev_cols = previous_columns(previous) if previous is not None else []
    prev_types = dict(prev_cols)
    version = previous.version if previous is not None else 0

    def natural_of(col: UploadColumn) -> pa.DataType | None:
        if col.natural is None:
            errors.append(
                IngestErrorDetail(
                    row=None, column=col.name, reason=col.unsupported or "unsupported type"
                )
            )
        return col.natural

    def previous_of(col: UploadColumn, target: pa.DataType) -> pa.DataType:
        if not castable(col.native, target):
            errors.append(
                IngestErrorDetail(
                    row=None,
                    column=col.name,
                    reason=f"type {_describe(col.native)} conflicts with {type_name(target)} "
                    f"in version {version}",
                )
            )
        return target

    columns: list[TargetColumn] = []
    if previous is not None and mode == "append":
        for name, prev_type in prev_cols:
            col = by_name.get(name)
            if col is not None:
                previous_of(col, prev_type)
            columns.append(TargetColumn(name, prev_type, name if col else None, name in required))
        for col in upload:
            if col.name not in prev_types:
                errors.append(
                    IngestErrorDetail(
                        row=None,
                        column=col.name,
                        reason=f"column is not in version {version}; append cannot add "
                        "columns (use mode=replace)",
                    )
                )
    else:
        for col in upload:
            prev_type = prev_types.get(col.name)
            chosen = previous_of(col, prev_type) if prev_type is not None else natural_of(col)
            if chosen is not None:
                columns.append(TargetColumn(col.name, chosen, col.name, col.name in required))

    for name in required:
        if name not in by_name:
            where = (
                f"; version {version} has it" if previous is not None and name in prev_types else ""
            )
            errors.append(
                IngestErrorDetail(
                    row=None, column=name, reason=f"required column is missing{where}"
                )
            )
    if errors:
        raise SchemaRejected(errors)
    return Plan(columns=tuple(columns), previous=previous, mode=mode)


def _describe(t: pa.DataType) -> str:
    try:
        return type_name(t)
    except UnsupportedType:
        return str(t)


# -- CSV type inference ------------------------------------------------------------------------

# Text columns are tried against these in order; once a column has a type it can only widen
# along its chain (BIGINT → DOUBLE, DATE → TIMESTAMP) or fall back to VARCHAR.
_CANDIDATES: tuple[pa.DataType, ...] = (
    pa.int64(),
    pa.float64(),
    pa.bool_(),
    pa.date32(),
    pa.timestamp("us"),
)
_WIDER: dict[pa.DataType, tuple[pa.DataType, ...]] = {
    pa.int64(): (pa.int64(), pa.float64()),
    pa.float64(): (pa.float64(),),
    pa.bool_(): (pa.bool_(),),
    pa.date32(): (pa.date32(), pa.timestamp("us")),
    pa.timestamp("us"): (pa.timestamp("us"),),
}
_SAMPLE = 64
# "007", "-012": identifiers and zip codes, not numbers — keep them as text.
_LEADING_ZERO = r"^[+-]?0[0-9]"


def _parses(values: pa.Array, t: pa.DataType) -> bool:
    try:
        # A sample first: failing a cast over a whole batch is slow, failing 64 values is not.
        pc.cast(values.slice(0, _SAMPLE), t)
        if len(values) > _SAMPLE:
            pc.cast(values, t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


class TextTypeInference:
    """The natural type of each text column, over every batch of the file (not just the first).

    A column with no value at all is VARCHAR; numbers with a leading zero stay VARCHAR.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        # None: no value seen yet; a type: every value so far parses as it; string: settled.
        self._types: dict[str, pa.DataType | None] = dict.fromkeys(names)

    def observe(self, batch: pa.RecordBatch) -> None:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            current = self._types[name]
            if current == pa.string():
                continue
            values = pc.drop_null(column)
            if len(values) == 0:
                continue
            candidates = _CANDIDATES if current is None else _WIDER[current]
            numeric_ok = not pc.any(pc.match_substring_regex(values, _LEADING_ZERO)).as_py()
            chosen = pa.string()
            for candidate in candidates:
                if not numeric_ok and candidate in (pa.int64(), pa.float64()):
                    continue
                if _parses(values, candidate):
                    chosen = candidate
                    break
            self._types[name] = chosen

    def result(self) -> dict[str, pa.DataType]:
        return {name: t if t is not None else pa.string() for name, t in self._types.items()}
