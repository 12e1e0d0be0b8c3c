"""Column types of a dataset manifest: DuckDB type names <-> Arrow types (SPEC §4, catalogd).

A manifest's schema is `[{name, type}]` where `type` is the name DuckDB itself prints for the
column when it reads the version's Parquet files (`BIGINT`, `DOUBLE`, `VARCHAR`, `BOOLEAN`,
`DATE`, `TIMESTAMP`, `TIMESTAMP WITH TIME ZONE`, `DECIMAL(10,2)`, `VARCHAR[]`,
`STRUCT(a BIGINT, "my field" VARCHAR)`, `MAP(VARCHAR, BIGINT)` ...), so queryd's `DESCRIBE`
and the catalog agree. ingestd writes only *normalized* Arrow types (`normalize_type`), for which
`type_name` and `parse_type_name` are exact inverses; every file of a version is written with
`parse_type_name` of its manifest types, so appended files match the earlier ones bit for bit.
"""

from __future__ import annotations

import functools
import re

import duckdb
import pyarrow as pa

_SCALAR_NAMES: dict[pa.DataType, str] = {
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.date32(): "DATE",
    pa.time64("us"): "TIME",
    pa.timestamp("us"): "TIMESTAMP",
    pa.timestamp("ns"): "TIMESTAMP_NS",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
}
_SCALAR_TYPES: dict[str, pa.DataType] = {name: t for t, name in _SCALAR_NAMES.items()}
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_DECIMAL_PRECISION = 38  # DuckDB's DECIMAL limit


class UnsupportedType(ValueError):
    """An Arrow type a dataset cannot hold, or a type name this module cannot read."""


@functools.cache
def _duckdb_keywords() -> frozenset[str]:
    # DuckDB quotes struct field names that are keywords (reserved or not); ask it which.
    with duckdb.connect() as con:
        rows = con.execute("SELECT keyword_name FROM duckdb_keywords()").fetchall()
    return frozenset(str(row[0]).lower() for row in rows)


def _quote_field(name: str) -> str:
    if _PLAIN_IDENTIFIER.fullmatch(name) and name.lower() not in _duckdb_keywords():
        return name
    return '"' + name.replace('"', '""') + '"'


def normalize_type(t: pa.DataType) -> pa.DataType:
    """The type ingestd stores for a column whose values arrive as `t`.

    Narrow or exotic encodings collapse to the DuckDB-facing one (dictionary → its values,
    large/view strings → `string`, `date64` → `date32`, times → microseconds, naive timestamps
    in s/ms/us → `timestamp[us]`, zoned timestamps → `timestamp[us, UTC]`, a column of only
    nulls → `string`). Raises `UnsupportedType` for what a dataset cannot hold (durations,
    intervals, unions, extension types, decimals wider than 38 digits).
    """
    if pa.types.is_dictionary(t):
        return normalize_type(t.value_type)
    if pa.types.is_null(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.string()
    if getattr(pa.types, "is_string_view", lambda _: False)(t):
        return pa.string()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or getattr(pa.types, "is_binary_view", lambda _: False)(t)
    ):
        return pa.binary()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.time64("us")
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            return pa.timestamp("us", tz="UTC")
        return pa.timestamp("ns") if t.unit == "ns" else pa.timestamp("us")
    if pa.types.is_decimal(t):
        if t.precision > _MAX_DECIMAL_PRECISION:
            raise UnsupportedType(f"{t} is wider than DECIMAL({_MAX_DECIMAL_PRECISION})")
        return pa.decimal128(t.precision, t.scale)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(normalize_type(t.value_type))
    if getattr(pa.types, "is_list_view", lambda _: False)(t) or getattr(
        pa.types, "is_large_list_view", lambda _: False
    )(t):
        return pa.list_(normalize_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(normalize_type(t.key_type), normalize_type(t.item_type))
    if pa.types.is_struct(t):
        if t.num_fields == 0:  # `{}` in JSON: DuckDB has no empty STRUCT
            raise UnsupportedType("an object without fields cannot be stored")
        return pa.struct([pa.field(f.name, normalize_type(f.type)) for f in t])
    if t in _SCALAR_NAMES:
        return t
    raise UnsupportedType(f"{t} cannot be stored in a dataset")


def type_name(t: pa.DataType) -> str:
    """DuckDB's name for a normalized Arrow type (`UnsupportedType` for any other)."""
    if t in _SCALAR_NAMES:
        return _SCALAR_NAMES[t]
    if pa.types.is_decimal128(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_list(t):
        return f"{type_name(t.value_type)}[]"
    if pa.types.is_map(t):
        return f"MAP({type_name(t.key_type)}, {type_name(t.item_type)})"
    if pa.types.is_struct(t):
        fields = ", ".join(f"{_quote_field(f.name)} {type_name(f.type)}" for f in t)
        return f"STRUCT({fields})"
    raise UnsupportedType(f"{t} has no DuckDB type name here (normalize it first)")


class _Parser:
    """Recursive descent over DuckDB type names: scalars, DECIMAL(p,s), T[], STRUCT, MAP."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> UnsupportedType:
        return UnsupportedType(f"cannot read type {self.text!r}: {why} at offset {self.pos}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def expect(self, token: str) -> None:
        self.skip_spaces()
        if not self.text.startswith(token, self.pos):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def peek(self, token: str) -> bool:
        self.skip_spaces()
        return self.text.startswith(token, self.pos)

    def integer(self) -> int:
        self.skip_spaces()
        match = re.compile(r"\d+").match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a number")
        self.pos = match.end()
        return int(match.group())

    def identifier(self) -> str:
        self.skip_spaces()
        if self.text.startswith('"', self.pos):
            out = []
            self.pos += 1
            while True:
                end = self.text.find('"', self.pos)
                if end < 0:
                    raise self.fail("unterminated quoted name")
                out.append(self.text[self.pos : end])
                self.pos = end + 1
                if self.text.startswith('"', self.pos):  # "" is an escaped quote
                    out.append('"')
                    self.pos += 1
                    continue
                return "".join(out)
        match = _PLAIN_IDENTIFIER.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a field name")
        self.pos = match.end()
        return match.group()

    def parse_type(self) -> pa.DataType:
        self.skip_spaces()
        t = self._base()
        while self.peek("[]"):
            self.pos += 2
            t = pa.list_(t)
        return t

    def _base(self) -> pa.DataType:
        if self.peek("STRUCT("):
            self.pos += len("STRUCT(")
            fields = []
            while True:
                name = self.identifier()
                fields.append(pa.field(name, self.parse_type()))
                if self.peek(","):
                    self.pos += 1
                    continue
                self.expect(")")
                return pa.struct(fields)
        if self.peek("MAP("):
            self.pos += len("MAP(")
            key = self.parse_type()
            self.expect(",")
            item = self.parse_type()
            self.expect(")")
            return pa.map_(key, item)
        if self.peek("DECIMAL("):
            self.pos += len("DECIMAL(")
            precision = self.integer()
            self.expect(",")
            scale = self.integer()
            self.expect(")")
            if not 0 < precision <= _MAX_DECIMAL_PRECISION or scale > precision:
                raise self.fail("bad DECIMAL precision/scale")
            return pa.decimal128(precision, scale)
        # Longest scalar name first: TIMESTAMP WITH TIME ZONE before TIMESTAMP, etc.
        for name in sorted(_SCALAR_TYPES, key=len, reverse=True):
            if self.text.startswith(name, self.pos):
                end = self.pos + len(name)
                if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
                    continue
                self.pos = end
                return _SCALAR_TYPES[name]
        raise self.fail("unknown type")


def parse_type_name(text: str) -> pa.DataType:
    """The Arrow type of a DuckDB type name written by `type_name`."""
    parser = _Parser(text)
    t = parser.parse_type()
    parser.skip_spaces()
    if parser.pos != len(text):
        raise parser.fail("unexpected trailing text")
    return t
