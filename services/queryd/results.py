"""Result encodings (SPEC §4, queryd): json rows, csv, Arrow IPC stream.

JSON values (orjson): numbers, strings and booleans as is; DATE, TIME and TIMESTAMP as ISO 8601
strings (with the offset for TIMESTAMPTZ); DECIMAL as a string, so no digit is lost to a float;
a HUGEINT column (what SUM of a BIGINT gives) as numbers, and as strings only for values beyond
64 bits; BLOB and BIT as base64; LIST and ARRAY as arrays; STRUCT as objects; MAP as an
object with string keys; INTERVAL as `{months, days, nanoseconds}`; NaN and ±infinity as null.
An infinite DATE or TIMESTAMP is the string "infinity" or "-infinity".

CSV: one header row; nested, binary and interval values are written as their JSON text.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_HUGE_INTEGERS = frozenset({"HUGEINT", "UHUGEINT"})
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


def _default(value: Any) -> Any:
    """orjson's fallback for what it does not encode natively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, pa.MonthDayNano):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def column_values(column: pa.ChunkedArray) -> list[Any]:
    """A column as JSON-ready Python values (see the module docstring)."""
    try:
        values: list[Any] = column.to_pylist()
    except (OverflowError, ValueError, pa.ArrowException):
        return _as_text(column)
    if pa.types.is_map(column.type):
        return [None if v is None else {str(k): item for k, item in v} for v in values]
    return values


def _as_text(column: pa.ChunkedArray) -> list[Any]:
    """Values of a column `to_pylist` cannot convert, one by one: DuckDB's ±infinity dates and
    timestamps (beyond Python's range) become "infinity"/"-infinity", anything else that cannot
    be converted becomes Arrow's text for it."""
    out: list[Any] = []
    for scalar in column:
        try:
            out.append(scalar.as_py())
        except (OverflowError, ValueError, pa.ArrowException):
            out.append(_out_of_range_text(scalar))
    return out


def _out_of_range_text(scalar: Any) -> str | None:
    if pa.types.is_temporal(scalar.type):
        width = pa.int64() if scalar.type.bit_width == 64 else pa.int32()
        try:
            raw = pc.cast(scalar, width, safe=False).as_py()
        except pa.ArrowException:
            raw = None
        if isinstance(raw, int):
            return "infinity" if raw > 0 else "-infinity"
    try:
        return str(pc.cast(scalar, pa.string()).as_py())
    except pa.ArrowException:
        return None


def _hugeint_values(values: list[Any]) -> list[Any]:
    return [
        int(v) if isinstance(v, Decimal) and _INT64_MIN <= v <= _UINT64_MAX else v for v in values
    ]


def json_rows(table: pa.Table, types: list[str] | None = None) -> list[tuple[Any, ...]]:
    """Rows as tuples in column order (orjson writes tuples as arrays). `types` are the DuckDB
    column types: HUGEINT values (what SUM of a BIGINT gives) that fit 64 bits are numbers."""
    columns = [column_values(table.column(i)) for i in range(table.num_columns)]
    for i, kind in enumerate(types or []):
        if kind in _HUGE_INTEGERS:
            columns[i] = _hugeint_values(columns[i])
    if not columns:
        return []
    return list(zip(*columns, strict=True))


def encode_json(
    columns: list[tuple[str, str]], table: pa.Table, truncated: bool, elapsed_ms: float
) -> bytes:
    return dumps(
        {
            "columns": [{"name": name, "type": kind} for name, kind in columns],
            "rows": json_rows(table, [kind for _, kind in columns]),
            "row_count": table.num_rows,
            "truncated": truncated,
            "elapsed_ms": elapsed_ms,
        }
    )


def _csv_native(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_date(arrow_type)
        or pa.types.is_timestamp(arrow_type)
        or pa.types.is_time(arrow_type)
        or pa.types.is_null(arrow_type)
    )


def _csv_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    encoded = _default(value) if isinstance(value, bytes | Decimal) else None
    if isinstance(encoded, str):
        return encoded
    return dumps(value).decode()


def encode_csv(table: pa.Table) -> bytes:
    arrays = []
    for column in table.columns:
        if _csv_native(column.type):
            arrays.append(column)
        elif pa.types.is_dictionary(column.type):
            arrays.append(pc.cast(column, pa.string()))
        else:
            texts = [_csv_text(v) for v in column_values(column)]
            arrays.append(pa.chunked_array([pa.array(texts, type=pa.string())]))
    plain = pa.Table.from_arrays(arrays, names=table.column_names)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(plain, sink)
    body: bytes = sink.getvalue().to_pybytes()
    return body


def encode_arrow(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body: bytes = sink.getvalue().to_pybytes()
    return body
