"""queryd test helpers: write real Parquet versions into the store and commit them through
catalogd's API, and run SQL."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse_common.contracts.catalog import part_key
from lakehouse_common.store import Store

DEFAULT_ROW_LIMIT = 25
MAX_ROW_LIMIT = 5000
BUCKET = "lakehouse"


def commit_table(
    catalog: httpx.Client,
    store: Store,
    name: str,
    version: int,
    table: pa.Table,
    *,
    parts: int = 1,
    row_group_size: int | None = None,
) -> dict[str, Any]:
    """Write `table` as `parts` Parquet files of version `version` and commit it."""
    files = []
    step = -(-table.num_rows // parts) if table.num_rows else 0
    for part in range(parts):
        chunk = table.slice(part * step, step) if step else table
        buf = io.BytesIO()
        pq.write_table(chunk, buf, row_group_size=row_group_size)
        data = buf.getvalue()
        key = part_key(name, version, part)
        store.put_bytes(BUCKET, key, data)
        files.append(
            {
                "key": key,
                "rows": chunk.num_rows,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    body = {
        "version": version,
        "schema": [{"name": f.name, "type": duckdb_type(f.type)} for f in table.schema],
        "files": files,
        "row_count": sum(f["rows"] for f in files),
        "source": {"format": "test"},
    }
    resp = catalog.post(f"/v1/catalog/datasets/{name}/versions", json=body)
    assert resp.status_code == 201, resp.text
    manifest: dict[str, Any] = resp.json()
    return manifest


def duckdb_type(arrow_type: pa.DataType) -> str:
    names = {
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }
    return names.get(arrow_type, str(arrow_type).upper())


ROLES = ("Forklift Operator", "Welder", "Picker", "Electrician")


def workers_table(count: int, *, offset: int = 0) -> pa.Table:
    """`count` deterministic workers: id `w-<n>`, role (4 kinds, round robin), city, n, score."""
    ids = range(offset, offset + count)
    return pa.table(
        {
            "id": pa.array([f"w-{i}" for i in ids], pa.string()),
            "role": pa.array([ROLES[i % len(ROLES)] for i in ids], pa.string()),
            "city": pa.array(["Aurora" if i % 3 == 0 else "Joliet" for i in ids], pa.string()),
            "n": pa.array(list(ids), pa.int64()),
            "score": pa.array([i / 2 for i in ids], pa.float64()),
        }
    )


def run(client: httpx.Client, sql: str, **extra: Any) -> httpx.Response:
    return client.post("/v1/query", json={"sql": sql, **extra})


def rows(client: httpx.Client, sql: str, **extra: Any) -> list[list[Any]]:
    resp = run(client, sql, **extra)
    assert resp.status_code == 200, resp.text
    out: list[list[Any]] = resp.json()["rows"]
    return out
