"""queryd's wire format and typed client (SPEC §4, queryd).

`POST /v1/query` runs one read-only SQL statement (SELECT, WITH … SELECT, or EXPLAIN) over the
lake's views and answers in the requested `format`:

- `json` (default): `QueryResponse` — `{columns: [{name, type}], rows: [[...], ...], row_count,
  truncated, elapsed_ms}`; rows are arrays in column order, `type` is DuckDB's type name;
- `csv`: `text/csv` with a header row;
- `arrow`: an Arrow IPC stream (`application/vnd.apache.arrow.stream`).

csv and arrow answers carry `row_count`, `truncated` and `elapsed_ms` as the `X-Lakehouse-*`
headers below. Views: every catalog dataset at its latest version (`workers`) and at each version
(`workers__v3`); observer streams `<data_dir>/_kb/<stream>.jsonl` as `kb_<stream>`; session logs
`<data_dir>/sessions/*.jsonl` as `sessions`. `GET /v1/query/views` lists them.

Refusals: 400 `invalid_input` (not one statement, not read-only, a file-reading function, SQL
error, wrong parameter count), 408 `query_timeout`, 422 (`limit` above `query.max_row_limit`,
unknown `format`), 503 (every query slot stayed busy for the whole time limit).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from lakehouse_common.errors import from_envelope
from lakehouse_common.http import ServiceClient

AREA = "query"
QUERY = "/v1/query"
VIEWS = "/v1/query/views"

CSV_MEDIA_TYPE = "text/csv"
ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
# Result metadata of csv and arrow answers (json answers carry it in the body).
ROW_COUNT_HEADER = "X-Lakehouse-Row-Count"
TRUNCATED_HEADER = "X-Lakehouse-Truncated"
ELAPSED_HEADER = "X-Lakehouse-Elapsed-Ms"

# Seconds a client waits beyond the query's own time limit before giving up on the answer.
_CLIENT_MARGIN_S = 5.0


class QueryFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    ARROW = "arrow"


class QueryRequest(BaseModel):
    """One SQL statement; `params` bind `$1`/`?` placeholders in order (never string-formatted)."""

    sql: str = Field(min_length=1)
    params: list[Any] = Field(default_factory=list)
    # Rows answered at most (default `query.default_row_limit`; above `query.max_row_limit` →
    # 422). 0 answers the columns only.
    limit: int | None = Field(default=None, ge=0)
    format: QueryFormat = QueryFormat.JSON
    # Lowers the time limit for this query; values above `query.timeout_s` are capped to it.
    timeout_s: float | None = Field(default=None, gt=0)

    model_config = {"extra": "forbid"}


class QueryColumn(BaseModel):
    """A result column: its name and DuckDB type (`BIGINT`, `VARCHAR`, `STRUCT(a INTEGER)`…)."""

    name: str
    type: str


class QueryResponse(BaseModel):
    """A json answer. `truncated` is true when the query had more rows than `limit`.

    Values: numbers and strings as is; DATE/TIME/TIMESTAMP as ISO 8601 strings; DECIMAL as a
    string (exact); HUGEINT (e.g. SUM of BIGINT) as a number, or a string beyond 64 bits; BLOB
    as base64; LIST/ARRAY as arrays; STRUCT as objects; MAP as an object with string keys;
    INTERVAL as `{months, days, nanoseconds}`; NaN/±inf as null.
    """

    columns: list[QueryColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    elapsed_ms: float


class ViewInfo(BaseModel):
    """One view a query can read."""

    name: str
    source: Literal["dataset", "kb", "sessions"]
    dataset: str | None = None
    version: int | None = None


class ViewList(BaseModel):
    views: list[ViewInfo]
    count: int
    # When queryd last asked catalogd successfully (null before the first answer).
    catalog_refreshed_at: datetime | None


class TabularAnswer(BaseModel):
    """A csv or arrow answer: the body and the metadata from the `X-Lakehouse-*` headers."""

    body: bytes
    row_count: int
    truncated: bool
    elapsed_ms: float


class QueryClient:
    """queryd over HTTP (matrixd, validatord and the CLI read the lake through it)."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    @staticmethod
    def _body(
        sql: str,
        params: list[Any] | None,
        limit: int | None,
        timeout_s: float | None,
        fmt: QueryFormat,
    ) -> dict[str, Any]:
        request = QueryRequest(
            sql=sql, params=list(params or []), limit=limit, timeout_s=timeout_s, format=fmt
        )
        return request.model_dump(mode="json", exclude_none=True)

    @staticmethod
    def _wait(timeout_s: float | None) -> float | None:
        return None if timeout_s is None else timeout_s + _CLIENT_MARGIN_S

    async def query(
        self,
        sql: str,
        params: list[Any] | None = None,
        *,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> QueryResponse:
        """Run `sql` and answer the json result; queryd's refusals raise its typed errors."""
        data = await self.client.call_json(
            "POST",
            QUERY,
            json=self._body(sql, params, limit, timeout_s, QueryFormat.JSON),
            timeout_s=self._wait(timeout_s),
        )
        return QueryResponse.model_validate(data)

    async def query_tabular(
        self,
        sql: str,
        params: list[Any] | None = None,
        *,
        fmt: Literal[QueryFormat.CSV, QueryFormat.ARROW] = QueryFormat.CSV,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> TabularAnswer:
        """Run `sql` and answer the raw csv or Arrow IPC stream body with its metadata."""
        status, headers, body = await self.client.request(
            "POST",
            QUERY,
            json=self._body(sql, params, limit, timeout_s, fmt),
            timeout_s=self._wait(timeout_s),
        )
        if status >= 400:
            try:
                decoded: Any = orjson.loads(body)
            except orjson.JSONDecodeError:
                decoded = body[:200].decode("utf-8", "replace")
            raise from_envelope(status, decoded)
        lower = {k.lower(): v for k, v in headers.items()}
        return TabularAnswer(
            body=body,
            row_count=int(lower.get(ROW_COUNT_HEADER.lower(), "0")),
            truncated=lower.get(TRUNCATED_HEADER.lower(), "false") == "true",
            elapsed_ms=float(lower.get(ELAPSED_HEADER.lower(), "0")),
        )

    async def views(self) -> ViewList:
        """The views queries can read right now."""
        return ViewList.model_validate(await self.client.call_json("GET", VIEWS))
