"""Manifest type names are DuckDB's own, and read back to the Arrow types they came from."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.ingestd.typenames import (
    UnsupportedType,
    normalize_type,
    parse_type_name,
    type_name,
)

NORMALIZED = [
    pa.bool_(),
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float32(),
    pa.float64(),
    pa.string(),
    pa.binary(),
    pa.date32(),
    pa.time64("us"),
    pa.timestamp("us"),
    pa.timestamp("ns"),
    pa.timestamp("us", tz="UTC"),
    pa.decimal128(10, 2),
    pa.decimal128(38, 0),
    pa.list_(pa.string()),
    pa.list_(pa.list_(pa.int64())),
    pa.struct([("x", pa.int64()), ("my field", pa.string()), ("order", pa.float64())]),
    pa.list_(pa.struct([("a", pa.int64())])),
    pa.map_(pa.string(), pa.list_(pa.int64())),
    pa.struct([('we"ird', pa.date32()), ("Upper", pa.bool_())]),
]


@pytest.mark.parametrize("arrow_type", NORMALIZED, ids=str)
def test_type_name_round_trips(arrow_type: pa.DataType) -> None:
    assert parse_type_name(type_name(arrow_type)) == arrow_type
    assert normalize_type(arrow_type) == arrow_type


def test_type_names_are_what_duckdb_reports_for_the_parquet(tmp_path: Path) -> None:
    columns = {f"c{i}": pa.nulls(1, t) for i, t in enumerate(NORMALIZED)}
    path = tmp_path / "types.parquet"
    pq.write_table(pa.table(columns), path)
    with duckdb.connect() as con:
        rel = con.sql(f"SELECT * FROM read_parquet('{path}')")
        reported = [str(t) for t in rel.types]
    assert reported == [type_name(t) for t in NORMALIZED]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (pa.dictionary(pa.int32(), pa.string()), pa.string()),
        (pa.large_string(), pa.string()),
        (pa.null(), pa.string()),
        (pa.large_binary(), pa.binary()),
        (pa.float16(), pa.float32()),
        (pa.date64(), pa.date32()),
        (pa.time32("s"), pa.time64("us")),
        (pa.timestamp("s"), pa.timestamp("us")),
        (pa.timestamp("ms"), pa.timestamp("us")),
        (pa.timestamp("ns", tz="Europe/Paris"), pa.timestamp("us", tz="UTC")),
        (pa.large_list(pa.large_string()), pa.list_(pa.string())),
        (pa.list_(pa.int64(), 3), pa.list_(pa.int64())),
    ],
    ids=str,
)
def test_exotic_encodings_normalize(given: pa.DataType, stored: pa.DataType) -> None:
    assert normalize_type(given) == stored


@pytest.mark.parametrize(
    "arrow_type",
    [pa.duration("s"), pa.month_day_nano_interval(), pa.decimal256(60, 2), pa.struct([])],
    ids=str,
)
def test_unstorable_types_are_refused(arrow_type: pa.DataType) -> None:
    with pytest.raises(UnsupportedType):
        normalize_type(arrow_type)


@pytest.mark.parametrize(
    "text", ["", "INT", "BIGINT[", "STRUCT(a)", "DECIMAL(0,0)", "BIGINT x", 'STRUCT("a BIGINT)']
)
def test_unreadable_type_names_are_refused(text: str) -> None:
    with pytest.raises(UnsupportedType):
        parse_type_name(text)
