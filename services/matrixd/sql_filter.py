"""The `sql_filter` of `/v1/matrix/retrieve`: one boolean expression that cannot leave its WHERE.

matrixd asks queryd for the candidates' rows with

    SELECT * FROM "<dataset>" WHERE "id" IN (SELECT unnest($1::VARCHAR[])) AND (
    <sql_filter>
    )

so the filter must stay inside those parentheses. It is read with DuckDB's own tokenizer (the
scanner queryd's parser uses, so string literals — `'…'`, `E'\\''`, `$$…$$` — are read the same
way on both sides) and refused when it holds a `;`, a comment (a trailing `--` would swallow
the closing parenthesis), a parameter (`?`, `$1`: the only parameter is matrixd's id list), a
`)` that closes more than it opened, or a top-level `,`; then DuckDB's parser must accept it as
the condition of `SELECT 1 WHERE (…)`. queryd's sandbox still applies to whatever the filter
reads (subqueries over views are allowed; files and writes are not).
"""

from __future__ import annotations

import duckdb

from lakehouse_common.errors import InvalidInput


def _refuse(reason: str, sql_filter: str) -> InvalidInput:
    return InvalidInput(f"sql_filter: {reason}", details={"sql_filter": sql_filter[:500]})


def check_sql_filter(sql_filter: str, max_chars: int) -> str:
    """The filter, stripped, when it is one safe boolean-expression candidate; else 400."""
    text = sql_filter.strip()
    if not text:
        raise _refuse("empty; omit the field for no condition", sql_filter)
    if len(text) > max_chars:
        raise _refuse(f"longer than {max_chars} characters", sql_filter)
    if "\x00" in text:
        raise _refuse("NUL character", sql_filter)
    try:
        tokens = duckdb.tokenize(text)
    except duckdb.Error as exc:
        raise _refuse(f"cannot be tokenized: {exc}", sql_filter) from None
    ends = [pos for pos, _ in tokens[1:]] + [len(text)]
    depth = 0
    for (pos, kind), end in zip(tokens, ends, strict=True):
        if kind == duckdb.token_type.comment:
            raise _refuse("comments are not allowed", sql_filter)
        if kind != duckdb.token_type.operator:
            continue
        token = text[pos:end]
        if ";" in token:
            raise _refuse("one expression only: ';' is not allowed", sql_filter)
        if "?" in token or "$" in token:
            raise _refuse("parameters ('?', '$n') are not allowed", sql_filter)
        for char in token:
            if char == "," and depth == 0:
                raise _refuse("one expression only: a top-level ',' is not allowed", sql_filter)
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise _refuse("unbalanced ')'", sql_filter)
    if depth != 0:
        raise _refuse("unbalanced '('", sql_filter)
    try:
        duckdb.extract_statements(f"SELECT 1 WHERE (\n{text}\n)")
    except duckdb.Error as exc:
        raise _refuse(str(exc), sql_filter) from None
    return text


def evidence_sql(dataset: str, condition: str | None) -> str:
    """The one query for the candidates' rows; `$1` is the list of candidate ids."""
    sql = f'SELECT * FROM "{dataset}" WHERE "id" IN (SELECT unnest($1::VARCHAR[]))'
    if condition is not None:
        sql += f" AND (\n{condition}\n)"
    return sql
