"""ingestd against a real catalogd, on both Store backends (local FS and a real S3 server).

Every rejected ingest is checked for what it must not do: the catalog is unchanged and nothing new
is under `datasets/<name>/` in the Store.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from lakehouse_common.config import ClientSettings
from lakehouse_common.contracts.ingest import IngestClient
from lakehouse_common.errors import InvalidInput, UnprocessableEntity
from lakehouse_common.http import HttpClient
from lakehouse_common.store import Store
from lakehouse_common.store.settings import store_from_settings
from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack, backend_config

BATCH_ROWS = 4096
ROWS_PER_FILE = 50_000
MAX_ERRORS = 10
BUCKET = "lakehouse"

CSV_V1 = (
    b"id,name,role,age,zip,active,joined,rate\n"
    b"w-1,Ann Lee,Welder,30,02134,true,2024-01-05,21.5\n"
    b'w-2,"Bob ""B"" Ray",Forklift Operator,41,10001,false,2023-11-30,19\n'
    b'w-3,"Cy, Jr",Welder,,60601,true,,24.25\n'
)


@pytest.fixture(scope="module", params=["fs", "s3"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    extra = backend_config(request, request.param)
    extra["ingest"] = {
        "batch_rows": BATCH_ROWS,
        "rows_per_file": ROWS_PER_FILE,
        "max_reported_errors": MAX_ERRORS,
    }
    live = LiveStack.create(tmp_path_factory.mktemp(f"ingestd-{request.param}"), extra)
    with live.running("catalogd", "ingestd", "gateway"):
        yield live


@pytest.fixture(scope="module")
def store(stack: LiveStack) -> Iterator[Store]:
    with store_from_settings(stack.settings) as s:
        yield s


@pytest.fixture
def api(stack: LiveStack) -> Iterator[httpx.Client]:
    with client_of(stack, "ingestd") as client:
        yield client


@pytest.fixture
def catalog(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("catalogd") as client:
        yield client


def client_of(stack: LiveStack, daemon: str) -> httpx.Client:
    return httpx.Client(base_url=stack.url(daemon), timeout=300.0)


def dataset_name() -> str:
    return f"ds_{secrets.token_hex(4)}"


def ingest(
    api: httpx.Client,
    name: str,
    body: bytes | Iterator[bytes],
    content_type: str | None = "text/csv",
    **params: str,
) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return api.post(f"/v1/ingest/{name}", content=body, headers=headers, params=params)


def created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def schema_of(manifest: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["type"] for f in manifest["schema"]}


def store_keys(store: Store, name: str) -> list[str]:
    keys: list[str] = []
    cursor = None
    while True:
        page = store.list(BUCKET, prefix=f"datasets/{name}/", limit=1000, cursor=cursor)
        keys += [info.key for info in page.objects]
        if page.next_cursor is None:
            return keys
        cursor = page.next_cursor


def catalog_state(catalog: httpx.Client, name: str) -> Any:
    resp = catalog.get(f"/v1/catalog/datasets/{name}/versions")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return resp.json()


def read_rows(store: Store, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in manifest["files"]:
        rows += pq.read_table(io.BytesIO(store.get_bytes(BUCKET, f["key"]))).to_pylist()
    return rows


class TestFormats:
    def test_csv_infers_types_from_the_data(self, api: httpx.Client) -> None:
        manifest = created(ingest(api, dataset_name(), CSV_V1))
        assert manifest["version"] == 1
        assert manifest["row_count"] == 3
        assert schema_of(manifest) == {
            "id": "VARCHAR",
            "name": "VARCHAR",
            "role": "VARCHAR",
            "age": "BIGINT",
            "zip": "VARCHAR",  # leading zero: an identifier, not a number
            "active": "BOOLEAN",
            "joined": "DATE",
            "rate": "DOUBLE",
        }

    def test_csv_values_and_nulls_round_trip(self, api: httpx.Client, store: Store) -> None:
        manifest = created(ingest(api, dataset_name(), CSV_V1))
        rows = read_rows(store, manifest)
        assert rows[1]["name"] == 'Bob "B" Ray'
        assert rows[2]["name"] == "Cy, Jr"
        assert rows[2]["age"] is None and rows[2]["joined"] is None
        assert rows[0]["zip"] == "02134" and rows[0]["joined"] == dt.date(2024, 1, 5)

    @pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/jsonl"])
    def test_jsonl_by_content_type(self, api: httpx.Client, content_type: str) -> None:
        body = (
            b'{"id":"w-1","n":1,"skills":["weld"],"addr":{"city":"Aurora"}}\n'
            b'{"id":"w-2","n":2.5,"skills":[],"addr":{"zip":"60505"}}\n\n'
            b'{"id":"w-3","n":null,"when":"2024-01-01T10:00:00"}\n'
        )
        manifest = created(ingest(api, dataset_name(), body, content_type))
        assert manifest["row_count"] == 3
        assert schema_of(manifest) == {
            "id": "VARCHAR",
            "n": "DOUBLE",
            "skills": "VARCHAR[]",
            "addr": "STRUCT(city VARCHAR, zip VARCHAR)",
            "when": "VARCHAR",  # JSON has no timestamps: text stays text
        }

    @pytest.mark.parametrize(
        "content_type", ["application/vnd.apache.parquet", "application/x-parquet"]
    )
    def test_parquet_by_content_type(self, api: httpx.Client, content_type: str) -> None:
        table = pa.table(
            {
                "id": ["a", "b"],
                "n": pa.array([1, 2], pa.int32()),
                "at": pa.array([1, 2], pa.timestamp("ms")),
                "tags": pa.array(["x", "y"]).dictionary_encode(),
            }
        )
        manifest = created(ingest(api, dataset_name(), parquet_bytes(table), content_type))
        assert manifest["row_count"] == 2
        assert schema_of(manifest) == {
            "id": "VARCHAR",
            "n": "INTEGER",
            "at": "TIMESTAMP",
            "tags": "VARCHAR",
        }

    @pytest.mark.parametrize("content_type", ["application/octet-stream", "text/plain", None])
    def test_format_query_parameter_wins(self, api: httpx.Client, content_type: str | None) -> None:
        body = b'{"id":"a","n":1}\n'
        manifest = created(ingest(api, dataset_name(), body, content_type, format="jsonl"))
        assert manifest["source"]["format"] == "jsonl"
        assert schema_of(manifest) == {"id": "VARCHAR", "n": "BIGINT"}

    def test_format_query_wins_over_a_contradicting_content_type(self, api: httpx.Client) -> None:
        manifest = created(ingest(api, dataset_name(), b"a,b\n1,2\n", "text/plain", format="csv"))
        assert manifest["source"]["format"] == "csv"

    @pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png", None])
    def test_unknown_format_is_415_and_writes_nothing(
        self, api: httpx.Client, catalog: httpx.Client, content_type: str | None
    ) -> None:
        name = dataset_name()
        resp = ingest(api, name, b"a,b\n1,2\n", content_type)
        assert_envelope(resp, 415, "unsupported_media_type")
        assert catalog_state(catalog, name) is None

    def test_filename_extension_decides_an_untyped_body(self, api: httpx.Client) -> None:
        manifest = created(
            ingest(api, dataset_name(), b"a\n1\n", "application/octet-stream", filename="x.csv")
        )
        assert manifest["source"]["filename"] == "x.csv"


class TestSourceObject:
    def test_ingests_an_object_already_in_the_store(self, api: httpx.Client, store: Store) -> None:
        key = f"uploads/{secrets.token_hex(4)}/workers.csv"
        store.put_bytes(BUCKET, key, CSV_V1)
        resp = api.post(f"/v1/ingest/{dataset_name()}", json={"source": {"key": key}})
        manifest = created(resp)
        assert manifest["row_count"] == 3
        source = manifest["source"]
        assert (source["bucket"], source["key"], source["format"]) == (BUCKET, key, "csv")
        assert source["sha256"] == hashlib.sha256(CSV_V1).hexdigest()

    def test_format_in_body_for_a_key_without_extension(
        self, api: httpx.Client, store: Store
    ) -> None:
        key = f"uploads/{secrets.token_hex(4)}/blob"
        store.put_bytes("other-bucket", key, b'{"id":"x"}\n')
        body = {"source": {"bucket": "other-bucket", "key": key}, "format": "jsonl"}
        manifest = created(api.post(f"/v1/ingest/{dataset_name()}", json=body))
        assert manifest["source"]["bucket"] == "other-bucket"

    def test_missing_object_is_404(self, api: httpx.Client, catalog: httpx.Client) -> None:
        name = dataset_name()
        resp = api.post(f"/v1/ingest/{name}", json={"source": {"key": "nope/x.csv"}})
        assert resp.status_code == 404, resp.text
        assert catalog_state(catalog, name) is None

    @pytest.mark.parametrize(
        "body",
        [{"source": {}}, {"key": "x.csv"}, {"source": {"key": "x.csv"}, "format": "xml"}],
    )
    def test_malformed_source_request_is_422(self, api: httpx.Client, body: Any) -> None:
        resp = api.post(f"/v1/ingest/{dataset_name()}", json=body)
        assert_envelope(resp, 422, "invalid_request")


class TestManifest:
    def test_files_are_in_the_store_with_their_sha256_and_rows(
        self, api: httpx.Client, store: Store
    ) -> None:
        name = dataset_name()
        manifest = created(ingest(api, name, CSV_V1, filename="roster.csv"))
        assert [f["key"] for f in manifest["files"]] == [f"datasets/{name}/v1/part-00000.parquet"]
        for f in manifest["files"]:
            data = store.get_bytes(BUCKET, f["key"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
            assert len(data) == f["bytes"]
            meta = pq.ParquetFile(io.BytesIO(data)).metadata
            assert meta.num_rows == f["rows"]
            assert meta.row_group(0).column(0).compression == "ZSTD"
        assert sum(f["rows"] for f in manifest["files"]) == manifest["row_count"]

    def test_source_describes_the_upload(self, api: httpx.Client) -> None:
        manifest = created(ingest(api, dataset_name(), CSV_V1, filename="roster.csv"))
        assert manifest["source"] == {
            "format": "csv",
            "filename": "roster.csv",
            "mode": "replace",
            "bytes": len(CSV_V1),
            "sha256": hashlib.sha256(CSV_V1).hexdigest(),
            "rows": 3,
        }

    def test_schema_types_are_what_duckdb_reads(
        self, api: httpx.Client, store: Store, tmp_path: Path
    ) -> None:
        manifest = created(ingest(api, dataset_name(), CSV_V1))
        local = tmp_path / "part.parquet"
        local.write_bytes(store.get_bytes(BUCKET, manifest["files"][0]["key"]))
        with duckdb.connect() as con:
            rel = con.sql(f"SELECT * FROM read_parquet('{local}')")
            assert dict(zip(rel.columns, map(str, rel.types), strict=True)) == schema_of(manifest)

    def test_catalog_serves_the_answered_manifest(
        self, api: httpx.Client, catalog: httpx.Client
    ) -> None:
        name = dataset_name()
        manifest = created(ingest(api, name, CSV_V1))
        assert catalog.get(f"/v1/catalog/datasets/{name}/versions/1").json() == manifest


class TestModes:
    def test_replace_holds_exactly_the_new_rows(self, api: httpx.Client, store: Store) -> None:
        name = dataset_name()
        created(ingest(api, name, CSV_V1))
        second = created(ingest(api, name, b"id,name,age\nw-7,Gus,50\n"))
        assert (second["version"], second["row_count"]) == (2, 1)
        assert read_rows(store, second) == [{"id": "w-7", "name": "Gus", "age": 50}]
        assert schema_of(second) == {"id": "VARCHAR", "name": "VARCHAR", "age": "BIGINT"}
        third = created(ingest(api, name, b"id,name,age\nw-8,Hal,\n"))
        assert third["version"] == 3

    def test_replace_keeps_the_previous_type_and_may_add_columns(self, api: httpx.Client) -> None:
        name = dataset_name()
        created(ingest(api, name, b"id,code\n1,10\n"))  # id inferred BIGINT
        second = created(ingest(api, name, b"id,code,note\n2,11,hello\n"))
        assert schema_of(second) == {"id": "BIGINT", "code": "BIGINT", "note": "VARCHAR"}

    def test_append_adds_rows_after_the_previous_ones(
        self, api: httpx.Client, store: Store
    ) -> None:
        name = dataset_name()
        created(ingest(api, name, CSV_V1))
        body = b'{"id":"w-4","name":"Dee","age":"29","zip":"94110"}\n'
        manifest = created(ingest(api, name, body, "application/x-ndjson", mode="append"))
        assert (manifest["version"], manifest["row_count"]) == (2, 4)
        assert [f["key"] for f in manifest["files"]] == [
            f"datasets/{name}/v2/part-00000.parquet",  # version 1's rows, copied
            f"datasets/{name}/v2/part-00001.parquet",
        ]
        rows = read_rows(store, manifest)
        assert [r["id"] for r in rows] == ["w-1", "w-2", "w-3", "w-4"]
        assert rows[3]["age"] == 29  # cast to version 1's BIGINT
        assert rows[3]["role"] is None  # absent optional column: null
        assert manifest["source"]["rows"] == 1

    def test_append_to_nothing_is_the_first_version(self, api: httpx.Client) -> None:
        manifest = created(ingest(api, dataset_name(), CSV_V1, mode="append"))
        assert (manifest["version"], manifest["row_count"]) == (1, 3)

    def test_previous_versions_stay_readable(
        self, api: httpx.Client, store: Store, catalog: httpx.Client
    ) -> None:
        name = dataset_name()
        first = created(ingest(api, name, CSV_V1))
        created(ingest(api, name, b"id\nw-9\n", mode="append"))
        created(ingest(api, name, b"id,x\nz,1\n"))
        assert catalog.get(f"/v1/catalog/datasets/{name}").json()["versions"] == [1, 2, 3]
        assert len(read_rows(store, first)) == 3

    def test_concurrent_ingests_of_one_dataset_get_distinct_versions(
        self, stack: LiveStack
    ) -> None:
        name = dataset_name()

        def one(i: int) -> dict[str, Any]:
            with client_of(stack, "ingestd") as client:
                return created(ingest(client, name, f"id,n\nw-{i},{i}\n".encode(), mode="append"))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            manifests = list(pool.map(one, range(4)))
        assert sorted(m["version"] for m in manifests) == [1, 2, 3, 4]
        assert max(m["row_count"] for m in manifests) == 4


# name, body, content type, params, status, expected (row, column) pairs (None: any/none)
BROKEN: list[tuple[str, bytes, str, dict[str, str], int, list[tuple[int | None, str | None]]]] = [
    (
        "bad CSV quoting",
        b'id,name,age\nw-5,"unterminated,30\nw-6,Eve,31\n',
        "text/csv",
        {},
        400,
        [(1, None)],
    ),
    ("quote inside a quoted field", b'id,name\nw-5,"a"b\n', "text/csv", {}, 400, [(1, None)]),
    ("ragged rows", b"id,name\nw-5,a\nw-6,b,c\nw-7\n", "text/csv", {}, 400, [(2, None), (3, None)]),
    (
        "wrong type vs previous version",
        b"id,name,age\nw-5,Eve,31\nw-6,Fay,abc\nw-7,Gil,1.5\n",
        "text/csv",
        {"mode": "append"},
        422,
        [(2, "age"), (3, "age")],
    ),
    (
        "wrong type in JSONL vs previous version",
        b'{"id":"w-5","active":"maybe"}\n',
        "application/x-ndjson",
        {},
        422,
        [(1, "active")],
    ),
    ("missing id column", b"name,age\nEve,31\n", "text/csv", {}, 422, [(None, "id")]),
    ("null id", b"id,name\nw-5,Eve\n,Fay\n", "text/csv", {"mode": "append"}, 422, [(2, "id")]),
    (
        "missing required column",
        b"id,name\nw-5,Eve\n",
        "text/csv",
        {"required": "id,role"},
        422,
        [(None, "role")],
    ),
    (
        "append adds a column",
        b"id,name,shoe\nw-5,Eve,9\n",
        "text/csv",
        {"mode": "append"},
        422,
        [(None, "shoe")],
    ),
    ("empty CSV", b"", "text/csv", {}, 400, [(None, None)]),
    ("header only", b"id,name\n", "text/csv", {}, 400, [(None, None)]),
    ("empty JSONL", b"", "application/x-ndjson", {}, 400, [(None, None)]),
    (
        "JSONL syntax error",
        b'{"id":"w-5"}\n{"id" "w-6"}\n',
        "application/x-ndjson",
        {},
        400,
        [(2, None)],
    ),
    ("JSONL array line", b'{"id":"w-5"}\n[1, 2]\n', "application/x-ndjson", {}, 400, [(2, None)]),
    (
        "JSONL mixed value types",
        b'{"id":"w-5","n":1}\n{"id":"w-6","n":"x"}\n',
        "application/x-ndjson",
        {},
        422,
        [(2, "n")],
    ),
    (
        "binary garbage as CSV",
        b"\x00\x01garbage" + bytes(range(256)) * 8,
        "text/csv",
        {},
        400,
        [(None, None)],
    ),
    ("latin-1 text as CSV", b"id,name\nw-5,Jos\xe9\n", "text/csv", {}, 400, [(None, None)]),
    (
        "binary garbage as Parquet",
        bytes(range(256)) * 8,
        "application/vnd.apache.parquet",
        {},
        400,
        [(None, None)],
    ),
    ("0-byte Parquet", b"", "application/vnd.apache.parquet", {}, 400, [(None, None)]),
    ("CSV sent as Parquet", CSV_V1, "application/vnd.apache.parquet", {}, 400, [(None, None)]),
]


def _schema_conflict_parquet() -> bytes:
    # `age` was BIGINT in version 1; a struct can never become one.
    return parquet_bytes(
        pa.table({"id": ["w-5"], "age": pa.array([{"years": 31}])}),
    )


class TestRejections:
    @pytest.fixture
    def existing(self, api: httpx.Client) -> str:
        """A dataset with version 1 (from CSV_V1: id VARCHAR, age BIGINT, active BOOLEAN…)."""
        name = dataset_name()
        created(ingest(api, name, CSV_V1))
        return name

    def assert_nothing_written(
        self, catalog: httpx.Client, store: Store, name: str, before: tuple[Any, list[str]]
    ) -> None:
        assert (catalog_state(catalog, name), store_keys(store, name)) == before

    @pytest.mark.parametrize(
        ("case", "body", "content_type", "params", "status", "expected"),
        BROKEN,
        ids=[case[0] for case in BROKEN],
    )
    def test_broken_input_is_rejected_whole(
        self,
        api: httpx.Client,
        catalog: httpx.Client,
        store: Store,
        existing: str,
        case: str,
        body: bytes,
        content_type: str,
        params: dict[str, str],
        status: int,
        expected: list[tuple[int | None, str | None]],
    ) -> None:
        before = (catalog_state(catalog, existing), store_keys(store, existing))
        resp = ingest(api, existing, body, content_type, **params)
        assert resp.status_code == status, resp.text
        envelope = resp.json()
        assert envelope["error"]["code"] == (
            "invalid_input" if status == 400 else "invalid_request"
        )
        assert envelope["trace_id"] == resp.headers[TRACE_HEADER]
        errors = envelope["error"]["details"]["errors"]
        assert [(e["row"], e["column"]) for e in errors] == expected
        assert all(e["reason"] for e in errors)
        self.assert_nothing_written(catalog, store, existing, before)

    def test_schema_conflict_with_previous_version(
        self, api: httpx.Client, catalog: httpx.Client, store: Store, existing: str
    ) -> None:
        before = (catalog_state(catalog, existing), store_keys(store, existing))
        resp = ingest(api, existing, _schema_conflict_parquet(), "application/x-parquet")
        assert resp.status_code == 422, resp.text
        [error] = resp.json()["error"]["details"]["errors"]
        assert (error["row"], error["column"]) == (None, "age")
        assert "conflicts with BIGINT" in error["reason"]
        self.assert_nothing_written(catalog, store, existing, before)

    def test_a_bad_row_late_in_a_large_file_rejects_it_all(
        self, api: httpx.Client, catalog: httpx.Client, store: Store, existing: str
    ) -> None:
        # Several batches (and more than one part file) are converted before the bad row.
        rows = ROWS_PER_FILE + 3 * BATCH_ROWS
        lines = [f"w-{i},Name {i},{i % 90}" for i in range(rows)]
        lines[rows - 2] = f"w-{rows - 2},Late,old"
        body = ("id,name,age\n" + "\n".join(lines) + "\n").encode()
        before = (catalog_state(catalog, existing), store_keys(store, existing))
        resp = ingest(api, existing, body, mode="append")
        assert resp.status_code == 422, resp.text
        errors = resp.json()["error"]["details"]["errors"]
        assert errors == [
            {"row": rows - 1, "column": "age", "reason": "cannot convert 'old' to BIGINT"}
        ]
        self.assert_nothing_written(catalog, store, existing, before)

    def test_reported_errors_stop_at_the_configured_limit(
        self, api: httpx.Client, catalog: httpx.Client, store: Store, existing: str
    ) -> None:
        body = b"id,name,age\n" + b"".join(b"w-%d,X,bad%d\n" % (i, i) for i in range(50))
        before = (catalog_state(catalog, existing), store_keys(store, existing))
        resp = ingest(api, existing, body)
        assert resp.status_code == 422, resp.text
        details = resp.json()["error"]["details"]
        assert [e["row"] for e in details["errors"]] == list(range(1, MAX_ERRORS + 1))
        assert details["truncated"] is True
        self.assert_nothing_written(catalog, store, existing, before)

    def test_first_version_rejected_leaves_no_dataset(
        self, api: httpx.Client, catalog: httpx.Client, store: Store
    ) -> None:
        name = dataset_name()
        resp = ingest(api, name, b"id,name\nw-1,a\n,b\n")
        assert resp.status_code == 422, resp.text
        assert catalog_state(catalog, name) is None
        assert store_keys(store, name) == []

    @pytest.mark.parametrize("name", ["Workers", "a__b", "1abc", "x" * 64])
    def test_bad_dataset_name_is_400(self, api: httpx.Client, name: str) -> None:
        resp = ingest(api, name, CSV_V1)
        assert_envelope(resp, 400, "invalid_input")

    def test_bad_mode_is_422(self, api: httpx.Client) -> None:
        resp = ingest(api, dataset_name(), CSV_V1, mode="merge")
        assert resp.status_code == 422, resp.text


class TestLargeUpload:
    def test_200k_row_csv_streams_in_batches_and_parts(
        self, stack: LiveStack, store: Store, tmp_path: Path
    ) -> None:
        rows = 200_000
        path = tmp_path / "workers.csv"
        ids = pa.array([f"w-{i}" for i in range(rows)])
        table = pa.table(
            {
                "id": ids,
                "name": pa.compute.binary_join_element_wise("Worker ", ids, ""),
                "role": pa.array(
                    [("Welder", "Forklift Operator", "Picker")[i % 3] for i in range(rows)]
                ),
                "years": pa.array(range(rows), pa.int64()),
                "rate": pa.array([15.5 + (i % 20) for i in range(rows)]),
                "active": pa.array([i % 2 == 0 for i in range(rows)]),
            }
        )
        pa_csv.write_csv(table, path)
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while chunk := fh.read(256 * 1024):
                    yield chunk

        name = dataset_name()
        # Through the gateway, as the CLI does: the body streams through two hops.
        with client_of(stack, "gateway") as gw:
            resp = gw.post(
                f"/v1/ingest/{name}",
                content=chunks(),
                headers={"Content-Type": "text/csv", "Content-Length": str(size)},
            )
        manifest = created(resp)
        assert manifest["row_count"] == rows
        assert [f["rows"] for f in manifest["files"]] == [50_000] * 4
        assert manifest["source"]["bytes"] == size
        assert schema_of(manifest)["years"] == "BIGINT"
        last = pq.ParquetFile(io.BytesIO(store.get_bytes(BUCKET, manifest["files"][-1]["key"])))
        groups = [last.metadata.row_group(i).num_rows for i in range(last.num_row_groups)]
        assert max(groups) <= BATCH_ROWS and sum(groups) == 50_000
        assert last.read(columns=["id"]).column(0)[-1].as_py() == f"w-{rows - 1}"


class TestIngestClient:
    async def test_typed_client_uploads_files_bytes_and_objects(
        self, stack: LiveStack, store: Store, tmp_path: Path
    ) -> None:
        name = dataset_name()
        path = tmp_path / "roster.csv"
        path.write_bytes(CSV_V1)
        key = f"uploads/{secrets.token_hex(4)}/more.jsonl"
        store.put_bytes(BUCKET, key, b'{"id": "w-9", "age": 44}\n')
        async with HttpClient(ClientSettings(timeout_s=120.0)) as http:
            client = IngestClient(http.client_for("gateway", stack.url("gateway")))
            first = await client.ingest_file(name, path)
            second = await client.ingest_bytes(
                name, b"id,age\nw-8,40\n", format="csv", mode="append"
            )
            third = await client.ingest_object(name, key, mode="append", required=["age"])
            assert [m.version for m in (first, second, third)] == [1, 2, 3]
            assert third.row_count == 5
            assert first.source["filename"] == "roster.csv"

            with pytest.raises(UnprocessableEntity) as rows:
                await client.ingest_bytes(name, b"id,age\nw-10,old\n", format="csv")
            assert rows.value.details["errors"][0]["row"] == 1
            assert rows.value.trace_id
            with pytest.raises(InvalidInput):
                await client.ingest_bytes(name, b"", format="parquet")


def test_spool_is_empty_after_requests(stack: LiveStack, api: httpx.Client) -> None:
    ingest(api, dataset_name(), CSV_V1)
    ingest(api, dataset_name(), b"\x00")
    spool = stack.settings.data_dir / "ingest" / "spool"
    assert list(spool.iterdir()) == []
