"""queryd fixtures: a live lake (catalogd + queryd + gateway) per Store backend, and helpers
that write real Parquet versions into the store and commit them through catalogd's API."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_common.contracts.catalog import part_key
from lakehouse_common.store import Store
from lakehouse_common.store.settings import store_from_settings
from lakehouse_common.tracing import TRACE_HEADER
from tests.conftest import LiveStack, backend_config

DEFAULT_ROW_LIMIT = 25
MAX_ROW_LIMIT = 5000
BUCKET = "lakehouse"


@pytest.fixture(scope="package", params=["fs", "s3"])
def lake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """catalogd, queryd and the gateway on one backend; views refresh every 0.2 s."""
    extra = backend_config(request, request.param)
    extra["query"] = {
        "default_row_limit": DEFAULT_ROW_LIMIT,
        "max_row_limit": MAX_ROW_LIMIT,
        "catalog_refresh_s": 0.2,
    }
    live = LiveStack.create(tmp_path_factory.mktemp(f"queryd-{request.param}"), extra)
    with live.running("catalogd", "queryd", "gateway"):
        yield live


@pytest.fixture(scope="package")
def store(lake: LiveStack) -> Iterator[Store]:
    with store_from_settings(lake.settings) as s:
        yield s


@pytest.fixture
def qd(lake: LiveStack) -> Iterator[httpx.Client]:
    with lake.client("queryd") as client:
        yield client


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


@pytest.fixture(scope="package")
def workers(lake: LiveStack, store: Store) -> dict[str, int]:
    """`workers` v1 (40 rows, two files) and v2 (10 rows): name → rows of each version."""
    with lake.client("catalogd") as catalog:
        commit_table(catalog, store, "workers", 1, workers_table(40), parts=2)
        commit_table(catalog, store, "workers", 2, workers_table(10, offset=100))
    return {"workers__v1": 40, "workers__v2": 10, "workers": 10}


def run(client: httpx.Client, sql: str, **extra: Any) -> httpx.Response:
    return client.post("/v1/query", json={"sql": sql, **extra})


def rows(client: httpx.Client, sql: str, **extra: Any) -> list[list[Any]]:
    resp = run(client, sql, **extra)
    assert resp.status_code == 200, resp.text
    out: list[list[Any]] = resp.json()["rows"]
    return out


def assert_envelope(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["trace_id"] == resp.headers[TRACE_HEADER]
    return body
