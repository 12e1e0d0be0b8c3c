"""queryd's parts in-process: lazy, pushed-down scans of the store (fs and a real S3 server),
the database's own lock without the statement check, JSON-lines views, the slot limit."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from lakehouse_common.config import LakehouseSettings, QuerySettings
from lakehouse_common.contracts.catalog import DatasetManifest, part_key
from lakehouse_common.contracts.query import QueryRequest
from lakehouse_common.errors import InvalidInput, LakehouseError, ServiceUnavailable
from lakehouse_common.store import Store
from lakehouse_common.store.settings import store_from_settings
from services.queryd.engine import QueryEngine, QueryResult
from services.queryd.lake import JsonLinesFile, LakeFiles, read_json_lines
from services.queryd.sandbox import check_statement
from services.queryd.service import QueryService
from services.queryd.views import View
from tests.support.stack import S3Server

ROWS = 200_000


class CountingHandler(pafs.FileSystemHandler):
    """Wraps a pyarrow filesystem and counts the bytes read through it."""

    def __init__(self, base: pafs.FileSystem) -> None:
        self.base = base
        self.bytes_read = 0

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)

    def get_type_name(self) -> str:
        return "counting"

    def normalize_path(self, path: str) -> str:
        return str(self.base.normalize_path(path))

    def get_file_info(self, paths: list[str]) -> Any:
        return self.base.get_file_info(paths)

    def get_file_info_selector(self, selector: Any) -> Any:
        return self.base.get_file_info(selector)

    def open_input_file(self, path: str) -> Any:
        inner = self.base.open_input_file(path)
        handler = self

        class Counted:
            closed = False

            def read(self, nbytes: int | None = None) -> bytes:
                data = inner.read(nbytes) if nbytes is not None else inner.read()
                handler.bytes_read += len(data)
                return bytes(data)

            def read_at(self, nbytes: int, offset: int) -> bytes:
                data = inner.read_at(nbytes, offset)
                handler.bytes_read += len(data)
                return bytes(data)

            def seek(self, pos: int, whence: int = 0) -> int:
                return int(inner.seek(pos, whence))

            def tell(self) -> int:
                return int(inner.tell())

            def size(self) -> int:
                return int(inner.size())

            def close(self) -> None:
                inner.close()

            def readable(self) -> bool:
                return True

            def seekable(self) -> bool:
                return True

            def writable(self) -> bool:
                return False

        return pa.PythonFile(Counted(), mode="r")

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only
    open_input_stream = _read_only


def settings_for(backend: str, root: Path, request: pytest.FixtureRequest) -> LakehouseSettings:
    data: dict[str, Any] = {"server": {"data_dir": root}}
    if backend == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        data["storage"] = {
            "backend": "s3",
            "s3": {"endpoint_url": s3.endpoint, "bucket_prefix": f"l{secrets.token_hex(3)}-"},
        }
    return LakehouseSettings.model_validate(data)


def run_sql(engine: QueryEngine, sql: str, limit: int = 1000) -> QueryResult:
    return engine.execute(sql, [], limit=limit, deadline=time.perf_counter() + 30, time_limit_s=30)


@dataclass
class ScannedLake:
    counting: CountingHandler
    size: int  # bytes of the one Parquet file
    built_with: int  # bytes read to build the version's Arrow dataset
    engine: QueryEngine

    def bytes_for(self, sql: str) -> tuple[list[Any], int]:
        self.counting.bytes_read = 0
        result = run_sql(self.engine, sql)
        return result.table.column(0).to_pylist(), self.counting.bytes_read


@pytest.fixture(scope="module", params=["fs", "s3"])
def lake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScannedLake]:
    """One 200k-row Parquet file in the store, read through a byte-counting filesystem."""
    root = tmp_path_factory.mktemp(f"scan-{request.param}")
    settings = settings_for(request.param, root, request)
    table = pa.table(
        {
            "id": pa.array(range(ROWS), pa.int64()),
            "payload": pa.array([f"{'x' * 40}{i}" for i in range(ROWS)]),
            "score": pa.array([i / 3 for i in range(ROWS)], pa.float64()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=10_000, compression="none")
    key = part_key("big", 1, 0)
    store: Store = store_from_settings(settings)
    info = store.put_bytes("lakehouse", key, buf.getvalue())
    files = LakeFiles.from_settings(settings, store)
    counting = CountingHandler(files.filesystem)
    files.filesystem = pafs.PyFileSystem(counting)
    manifest = DatasetManifest.model_validate(
        {
            "name": "big",
            "version": 1,
            "schema": [{"name": "id", "type": "BIGINT"}],
            "files": [{"key": key, "rows": ROWS, "bytes": info.size, "sha256": info.etag}],
            "row_count": ROWS,
            "created_at": datetime.now(UTC),
        }
    )
    dataset = files.dataset(manifest)
    engine = QueryEngine(QuerySettings(), root / "duck")
    engine.publish({"big": View("big", "dataset", dataset, dataset="big", version=1)})
    try:
        yield ScannedLake(counting, info.size, counting.bytes_read, engine)
    finally:
        engine.close()
        files.close()
        store.close()


class TestLazyScans:
    def test_registering_a_version_reads_only_its_footer(self, lake: ScannedLake) -> None:
        assert 0 < lake.built_with < lake.size * 0.05
        assert lake.bytes_for("SELECT 1") == ([1], 0)

    def test_one_column_reads_a_fraction_of_the_file(self, lake: ScannedLake) -> None:
        values, read = lake.bytes_for("SELECT count(*), max(score) FROM big")
        assert values == [ROWS]
        assert 0 < read < lake.size * 0.35

    def test_a_selective_filter_skips_row_groups(self, lake: ScannedLake) -> None:
        values, read = lake.bytes_for("SELECT payload FROM big WHERE id = 123456")
        assert values == [f"{'x' * 40}123456"]
        assert 0 < read < lake.size * 0.15

    def test_reading_every_column_reads_the_file(self, lake: ScannedLake) -> None:
        values, read = lake.bytes_for("SELECT sum(length(payload)) + max(id) + max(score) FROM big")
        assert len(values) == 1
        assert read > lake.size * 0.5


class TestDatabaseLock:
    """The second wall: the database refuses file access even with no statement check."""

    @pytest.fixture
    def raw(self, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        engine = QueryEngine(QuerySettings(), tmp_path / "duck")
        cursor = engine._db.cursor()  # bypasses check_statement on purpose
        try:
            yield cursor
        finally:
            cursor.close()
            engine.close()

    def test_file_readers_are_refused_by_duckdb_itself(
        self, raw: duckdb.DuckDBPyConnection, tmp_path: Path
    ) -> None:
        secret = f"s3cr3t-{secrets.token_hex(8)}"
        path = tmp_path / "secret.csv"
        path.write_text(f"token\n{secret}\n")
        for sql in (
            f"SELECT * FROM read_csv('{path}')",
            f"SELECT * FROM read_text('{path}')",
            f"SELECT * FROM '{path}'",
            f"SELECT * FROM glob('{tmp_path}/*')",
            "SELECT * FROM read_text('/etc/passwd')",
            f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
            f"ATTACH '{tmp_path}/x.db' AS x",
            "INSTALL httpfs",
            "LOAD httpfs",
        ):
            with pytest.raises(duckdb.Error) as caught:
                raw.execute(sql).fetchall()
            assert secret not in str(caught.value)
        assert not (tmp_path / "out.csv").exists()
        assert not (tmp_path / "x.db").exists()

    @pytest.mark.parametrize(
        "sql",
        [
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "RESET lock_configuration",
            "SET python_enable_replacements = true",
            "SET allow_community_extensions = true",
            "SET temp_directory = '/tmp'",
        ],
    )
    def test_the_configuration_is_locked(self, raw: duckdb.DuckDBPyConnection, sql: str) -> None:
        with pytest.raises(duckdb.Error):
            raw.execute(sql)
        assert raw.execute("SELECT current_setting('enable_external_access')").fetchall() == [
            (False,)
        ]


class TestStatementCheck:
    @pytest.fixture
    def con(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with duckdb.connect() as con:
            yield con

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT 1",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "VALUES (1), (2)",
            "FROM workers",
            "DESCRIBE workers",
            "SHOW TABLES",
            "SUMMARIZE workers",
            "SELECT * FROM range(3)",
            "SELECT * FROM generate_series(1, 3)",
            "SELECT unnest([1, 2])",
            "SELECT * FROM workers w, unnest([1, 2]) u(x)",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "EXPLAIN (FORMAT json) SELECT 1",
            "explain /* why */ analyze select * from workers",
            "SELECT * FROM main.workers",
            "SELECT $1, ?",
            "SELECT list_transform([1, 2], x -> x + 1)",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
            "SELECT * FROM r",
            "SELECT 1;",
        ],
    )
    def test_read_only_statements_pass(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        check_statement(con, sql)

    @pytest.mark.parametrize(
        "sql", ["EXPLAIN", "EXPLAIN ANALYZE", "EXPLAIN (FORMAT json)", "", ";", "   "]
    )
    def test_nothing_to_run_is_refused(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        with pytest.raises(InvalidInput):
            check_statement(con, sql)


class TestJsonLines:
    def write(self, path: Path, *lines: bytes) -> Path:
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path

    def test_keys_become_columns_in_first_seen_order(self, tmp_path: Path) -> None:
        path = self.write(
            tmp_path / "s.jsonl", orjson.dumps({"a": 1, "b": "x"}), orjson.dumps({"c": True})
        )
        lines = read_json_lines([path])
        assert lines.table.column_names == ["a", "b", "_line", "c"]
        assert lines.table.to_pylist() == [
            {"a": 1, "b": "x", "_line": 1, "c": None},
            {"a": None, "b": None, "_line": 2, "c": True},
        ]

    def test_malformed_and_non_object_lines_are_skipped(self, tmp_path: Path) -> None:
        path = self.write(
            tmp_path / "s.jsonl", b"{oops", b"[1]", b'"text"', b"", orjson.dumps({"a": 1}), b"\xff"
        )
        lines = read_json_lines([path])
        assert (lines.table.num_rows, lines.skipped) == (1, 4)

    def test_mixed_types_are_kept_as_json_text(self, tmp_path: Path) -> None:
        path = self.write(
            tmp_path / "s.jsonl",
            orjson.dumps({"v": 1, "o": {}}),
            orjson.dumps({"v": "one", "o": {}}),
            orjson.dumps({"v": [1], "o": None}),
        )
        table = read_json_lines([path]).table
        assert table.column("v").to_pylist() == ["1", '"one"', "[1]"]
        assert table.column("o").to_pylist() == ["{}", "{}", None]

    def test_nested_objects_become_structs(self, tmp_path: Path) -> None:
        path = self.write(
            tmp_path / "s.jsonl",
            orjson.dumps({"p": {"a": 1}}),
            orjson.dumps({"p": {"b": "x"}}),
        )
        table = read_json_lines([path]).table
        assert pa.types.is_struct(table.schema.field("p").type)

    def test_an_empty_file_is_an_empty_table_with_its_line_column(self, tmp_path: Path) -> None:
        (tmp_path / "s.jsonl").write_bytes(b"")
        lines = read_json_lines([tmp_path / "s.jsonl"], with_file=True)
        assert lines.table.num_rows == 0
        assert lines.table.column_names == ["_line", "_file"]

    def test_every_table_registers_in_duckdb(self, tmp_path: Path) -> None:
        path = self.write(
            tmp_path / "s.jsonl",
            orjson.dumps({"n": None, "l": [], "s": {}, "d": {"x": None}}),
            orjson.dumps({"n": None, "l": [], "s": {}, "d": {"x": None}}),
        )
        with duckdb.connect() as con:
            con.register("t", read_json_lines([path]).table)
            assert con.execute("SELECT count(*) FROM t").fetchall() == [(2,)]


class TestJsonLinesFile:
    def test_appended_lines_are_read_incrementally(self, tmp_path: Path) -> None:
        path = tmp_path / "s.jsonl"
        path.write_bytes(orjson.dumps({"i": 1}) + b"\n")
        followed = JsonLinesFile(path)
        assert followed.refresh() is True
        assert followed.refresh() is False  # nothing changed, nothing read
        with path.open("ab") as fh:
            fh.write(orjson.dumps({"i": 2, "new": "x"}) + b"\n" + b"broken\n")
        assert followed.refresh() is True
        assert followed.table.to_pylist() == [
            {"i": 1, "_line": 1, "new": None},
            {"i": 2, "_line": 2, "new": "x"},
        ]
        assert followed.skipped == 1

    def test_a_half_written_last_line_is_read_once_complete(self, tmp_path: Path) -> None:
        path = tmp_path / "s.jsonl"
        path.write_bytes(orjson.dumps({"i": 1}) + b"\n" + b'{"i": ')
        followed = JsonLinesFile(path)
        followed.refresh()
        assert followed.table.column("i").to_pylist() == [1]
        with path.open("ab") as fh:
            fh.write(b"2}")  # complete JSON, still no newline
        followed.refresh()
        assert followed.table.column("i").to_pylist() == [1, 2]
        with path.open("ab") as fh:
            fh.write(b"\n" + orjson.dumps({"i": 3}) + b"\n")
        followed.refresh()
        assert followed.table.column("i").to_pylist() == [1, 2, 3]
        assert followed.table.column("_line").to_pylist() == [1, 2, 3]

    def test_a_key_that_changes_type_becomes_json_text_everywhere(self, tmp_path: Path) -> None:
        path = tmp_path / "s.jsonl"
        path.write_bytes(orjson.dumps({"v": 1}) + b"\n")
        followed = JsonLinesFile(path)
        followed.refresh()
        with path.open("ab") as fh:
            fh.write(orjson.dumps({"v": "one"}) + b"\n")
        followed.refresh()
        assert followed.table.column("v").to_pylist() == ["1", '"one"']
        with path.open("ab") as fh:
            fh.write(orjson.dumps({"v": 3}) + b"\n")
        followed.refresh()
        assert followed.table.column("v").to_pylist() == ["1", '"one"', "3"]

    def test_a_key_seen_only_as_null_takes_its_later_type(self, tmp_path: Path) -> None:
        path = tmp_path / "s.jsonl"
        path.write_bytes(orjson.dumps({"v": None}) + b"\n")
        followed = JsonLinesFile(path)
        followed.refresh()
        assert followed.table.schema.field("v").type == pa.string()
        with path.open("ab") as fh:
            fh.write(orjson.dumps({"v": 7}) + b"\n")
        followed.refresh()
        assert followed.table.column("v").to_pylist() == [None, 7]

    def test_a_replaced_file_is_read_from_the_start(self, tmp_path: Path) -> None:
        path = tmp_path / "s.jsonl"
        path.write_bytes(b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(3)))
        followed = JsonLinesFile(path)
        followed.refresh()
        replacement = tmp_path / "new.jsonl"
        replacement.write_bytes(orjson.dumps({"j": 9}) + b"\n")
        replacement.replace(path)
        followed.refresh()
        assert followed.table.to_pylist() == [{"j": 9, "_line": 1}]


class SlowEngine:
    """Stands in for QueryEngine: holds its slot until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def execute(self, *args: Any, **kwargs: Any) -> QueryResult:
        self.entered.set()
        self.release.wait(30)
        return QueryResult([("x", "INTEGER")], pa.table({"x": [1]}), False)


class FreshViews:
    async def ensure_fresh(self, **kwargs: Any) -> None:
        return None


class TestSlots:
    async def test_a_query_without_a_free_slot_in_time_is_503(self) -> None:
        engine = SlowEngine()
        service = QueryService(QuerySettings(threads=1), engine, FreshViews())  # type: ignore[arg-type]
        first = asyncio.create_task(service.run(QueryRequest(sql="SELECT 1")))
        await asyncio.to_thread(engine.entered.wait, 30)
        with pytest.raises(ServiceUnavailable):
            await service.run(QueryRequest(sql="SELECT 1", timeout_s=0.05))
        engine.release.set()
        answer = await first
        assert orjson.loads(answer.body)["rows"] == [[1]]

    async def test_limits_are_checked_before_any_work(self) -> None:
        service = QueryService(QuerySettings(max_row_limit=10), SlowEngine(), FreshViews())  # type: ignore[arg-type]
        with pytest.raises(LakehouseError) as caught:
            await service.run(QueryRequest(sql="SELECT 1", limit=11))
        assert caught.value.status == 422
