"""The statement check every query passes before it runs (SPEC §4: read-only and sandboxed).

The first of two walls; the second is the database itself, opened with external access off and
its configuration locked (`engine.py`), so a form this check misses still cannot read a file.

1. DuckDB's own parser splits the text: exactly one statement, of type SELECT (a WITH, VALUES,
   DESCRIBE, SHOW or SUMMARIZE parses as one) or EXPLAIN; for EXPLAIN the explained statement
   must itself be a SELECT (`EXPLAIN ANALYZE` runs it).
2. The SELECT's syntax tree (`json_serialize_sql`) is walked: a table function must be on
   `ALLOWED_TABLE_FUNCTIONS` (deny by default: `read_csv`, `glob`, `query`, `arrow_scan`… are
   not), a few side-effecting scalar functions are refused, and a table name must be an
   identifier (`FROM '/etc/passwd'` names a file, not a view).

Every refusal raises `InvalidInput` (400) with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from lakehouse_common.errors import InvalidInput

# Table functions a query may call: generators and read-only catalog introspection. Everything
# else is refused, including every file reader and anything that runs SQL given as a string.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "repeat",
        "repeat_row",
        "json_each",
        "json_tree",
        "duckdb_columns",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_schemas",
        "duckdb_types",
        "duckdb_functions",
        "duckdb_keywords",
        "pragma_table_info",
        "pragma_version",
        "pg_timezone_names",
        "icu_calendar_names",
        "test_all_types",
    }
)

# Scalar functions with effects beyond computing a value.
DENIED_SCALAR_FUNCTIONS = frozenset(
    {"json_execute_serialized_sql", "enable_profile", "disable_profile", "write_log"}
)

_IDENTIFIER = re.compile(r"[^\W\d][\w$]*")
_READ_ONLY_HINT = "queryd is read-only: one SELECT (or WITH … SELECT, or EXPLAIN) per request"


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any] | None:
    """Refuse `sql` (InvalidInput) unless it is one read-only statement over views.

    Answers a SELECT's syntax tree (governance reads it: which views, which columns), None for
    an EXPLAIN (a plan discloses no rows)."""
    kind = _single_statement_type(con, sql)
    if kind == "SELECT":
        return _check_tree(con, sql)
    if kind == "EXPLAIN":
        inner = _explained(sql)
        inner_kind = _single_statement_type(con, inner)
        if inner_kind != "SELECT":
            raise InvalidInput(
                f"EXPLAIN {inner_kind} is not allowed; {_READ_ONLY_HINT}",
                details={"statement_type": f"EXPLAIN {inner_kind}"},
            )
        _check_tree(con, inner)
        return None
    raise InvalidInput(
        f"{kind} statements are not allowed; {_READ_ONLY_HINT}",
        details={"statement_type": kind},
    )


def _single_statement_type(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    try:
        statements = con.extract_statements(sql)
        kinds = [str(statement.type.name) for statement in statements]
    except duckdb.Error as exc:
        raise InvalidInput(str(exc)) from None
    except ValueError:
        # The parser knows the statement but the Python binding has no name for its type
        # (e.g. `UPDATE EXTENSIONS` in DuckDB 2.0): certainly not a SELECT.
        raise InvalidInput(
            f"unsupported statement; {_READ_ONLY_HINT}", details={"statement_type": "OTHER"}
        ) from None
    if len(kinds) != 1:
        raise InvalidInput(
            f"exactly one SQL statement per query, got {len(kinds)}",
            details={"statements": len(kinds)},
        )
    return kinds[0]


def _explained(sql: str) -> str:
    """The statement an EXPLAIN [ANALYZE] [(options)] explains, found with DuckDB's tokenizer
    (comments are not tokens, so `EXPLAIN /* … */ COPY …` cannot hide the COPY)."""
    tokens = [
        (pos, kind) for pos, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment
    ]
    ends = [pos for pos, _ in tokens[1:]] + [len(sql)]
    texts = [sql[pos:end].strip().lower() for (pos, _), end in zip(tokens, ends, strict=True)]
    i = 1  # tokens[0] is EXPLAIN: the parser said so
    if i < len(texts) and texts[i] in ("analyze", "analyse"):
        i += 1
    if i < len(texts) and texts[i].startswith("("):
        depth = 0
        while i < len(texts):
            if tokens[i][1] == duckdb.token_type.operator:
                depth += texts[i].count("(") - texts[i].count(")")
            i += 1
            if depth <= 0:
                break
    if i >= len(tokens):
        raise InvalidInput("EXPLAIN without a statement to explain")
    return sql[tokens[i][0] :]


def _check_tree(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    try:
        rows = con.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(str(exc)) from None
    tree: dict[str, Any] = orjson.loads(rows[0][0])
    if tree.get("error"):
        raise InvalidInput(str(tree.get("error_message") or "the statement cannot be analysed"))
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise InvalidInput(
                    f"table function {name}() is not allowed: queryd reads only the lake's views "
                    f"(allowed table functions: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))})",
                    details={"function": name},
                )
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in DENIED_SCALAR_FUNCTIONS:
                raise InvalidInput(f"function {name}() is not allowed", details={"function": name})
        elif kind == "BASE_TABLE" or (kind == "SHOW_REF" and node.get("show_type") == "SHOW"):
            # (SHOW TABLES and friends are SHOW_SPECIAL refs named like `"tables"`.)
            for part in ("catalog_name", "schema_name", "table_name"):
                name = str(node.get(part) or "")
                if name and not _IDENTIFIER.fullmatch(name):
                    raise InvalidInput(
                        f"{name!r} is not a view name: queryd reads only the lake's views, "
                        "never files",
                        details={"table": name},
                    )

    return tree


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in the serialized tree, depth first (iterative: trees can be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
