"""POST /v1/query against real daemons (catalogd + queryd + gateway), on both Store backends.

Datasets are real Parquet files written into the store and committed through catalogd's API;
observer streams and session logs are JSON-lines files written under the stack's data dir.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest

from lakehouse_common.contracts.query import (
    ARROW_MEDIA_TYPE,
    ELAPSED_HEADER,
    ROW_COUNT_HEADER,
    TRUNCATED_HEADER,
    QueryClient,
    QueryFormat,
)
from lakehouse_common.errors import InvalidInput, UnprocessableEntity
from lakehouse_common.http import HttpClient
from lakehouse_common.store import Store
from tests.support.envelope import assert_envelope
from tests.support.query import (
    DEFAULT_ROW_LIMIT,
    MAX_ROW_LIMIT,
    ROLES,
    commit_table,
    rows,
    run,
    workers_table,
)
from tests.support.stack import LiveStack

pytestmark = pytest.mark.usefixtures("workers")


def eventually(check: Any, *, attempts: int = 100, pause_s: float = 0.05) -> Any:
    """Poll `check()` until it returns a truthy value (bounded; no timing is asserted)."""
    for _ in range(attempts):
        value = check()
        if value:
            return value
        time.sleep(pause_s)
    raise AssertionError("condition never held")


class TestFormats:
    def test_json_answers_columns_and_rows_in_column_order(self, qd: httpx.Client) -> None:
        resp = run(qd, "SELECT id, n, score FROM workers__v1 WHERE n < 3 ORDER BY n")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        body = resp.json()
        assert body["columns"] == [
            {"name": "id", "type": "VARCHAR"},
            {"name": "n", "type": "BIGINT"},
            {"name": "score", "type": "DOUBLE"},
        ]
        assert body["rows"] == [["w-0", 0, 0.0], ["w-1", 1, 0.5], ["w-2", 2, 1.0]]
        assert body["row_count"] == 3
        assert body["truncated"] is False
        assert body["elapsed_ms"] >= 0

    def test_csv_has_a_header_row(self, qd: httpx.Client) -> None:
        resp = run(qd, "SELECT id, n FROM workers__v1 WHERE n < 2 ORDER BY n", format="csv")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/csv")
        assert resp.text.splitlines() == ['"id","n"', '"w-0",0', '"w-1",1']
        assert resp.headers[ROW_COUNT_HEADER] == "2"
        assert resp.headers[TRUNCATED_HEADER] == "false"
        assert float(resp.headers[ELAPSED_HEADER]) >= 0

    def test_arrow_answers_an_ipc_stream(self, qd: httpx.Client) -> None:
        resp = run(qd, "SELECT id, score FROM workers__v1 ORDER BY n LIMIT 5", format="arrow")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == ARROW_MEDIA_TYPE
        table = pa.ipc.open_stream(resp.content).read_all()
        assert table.column_names == ["id", "score"]
        assert table.column("id").to_pylist() == [f"w-{i}" for i in range(5)]
        assert table.schema.field("score").type == pa.float64()

    def test_json_encodes_duckdb_types(self, qd: httpx.Client) -> None:
        sql = (
            "SELECT DATE '2024-02-29' AS d, TIMESTAMP '2024-02-29 10:30:00' AS ts, "
            "TIMESTAMPTZ '2024-02-29 10:30:00+00' AS tstz, 12.50::DECIMAL(10,2) AS dec, "
            "[1, 2, 3] AS l, {'a': 1, 'b': 'x'} AS s, MAP(['k'], [7]) AS m, "
            "'abc'::BLOB AS b, 'nan'::DOUBLE AS nan, 'infinity'::DOUBLE AS inf, "
            "INTERVAL 3 DAY AS iv, NULL AS nothing, true AS yes, "
            "170141183460469231731687303715884105727::HUGEINT AS huge, 42::HUGEINT AS small"
        )
        body = run(qd, sql).json()
        assert body["rows"] == [
            [
                "2024-02-29",
                "2024-02-29T10:30:00",
                "2024-02-29T10:30:00+00:00",
                "12.50",
                [1, 2, 3],
                {"a": 1, "b": "x"},
                {"k": 7},
                "YWJj",
                None,
                None,
                {"months": 0, "days": 3, "nanoseconds": 0},
                None,
                True,
                "170141183460469231731687303715884105727",
                42,
            ]
        ]
        types = {c["name"]: c["type"] for c in body["columns"]}
        assert types["dec"] == "DECIMAL(10,2)" and types["s"] == "STRUCT(a INTEGER, b VARCHAR)"

    def test_csv_writes_nested_values_as_json(self, qd: httpx.Client) -> None:
        sql = "SELECT [1, 2] AS l, {'a': 'x'} AS s, 'ab'::BLOB AS b, 1.50::DECIMAL(4,2) AS d"
        resp = run(qd, sql, format="csv")
        assert resp.text.splitlines() == ['"l","s","b","d"', '"[1,2]","{""a"":""x""}","YWI=",1.50']

    def test_unknown_format_is_422(self, qd: httpx.Client) -> None:
        assert_envelope(run(qd, "SELECT 1", format="xml"), 422, "invalid_request")

    def test_unknown_field_is_422(self, qd: httpx.Client) -> None:
        assert_envelope(run(qd, "SELECT 1", param=[1]), 422, "invalid_request")


class TestQueries:
    def test_group_by_counts_roles(self, qd: httpx.Client) -> None:
        got = rows(qd, "SELECT role, count(*) AS n FROM workers__v1 GROUP BY role ORDER BY role")
        assert got == [[role, 10] for role in sorted(ROLES)]

    def test_sums_of_integers_are_numbers(self, qd: httpx.Client) -> None:
        body = run(qd, "SELECT sum(n) AS total FROM workers__v1").json()
        assert body["columns"] == [{"name": "total", "type": "HUGEINT"}]
        assert body["rows"] == [[sum(range(40))]]

    def test_dollar_params_bind_in_order(self, qd: httpx.Client) -> None:
        got = rows(
            qd,
            "SELECT id FROM workers__v1 WHERE role = $1 AND n >= $2 ORDER BY n",
            params=["Welder", 30],
        )
        assert got == [["w-33"], ["w-37"]]

    def test_question_mark_params_bind_in_order(self, qd: httpx.Client) -> None:
        assert rows(qd, "SELECT ?::INTEGER + ?::INTEGER AS s", params=[40, 2]) == [[42]]

    def test_params_are_values_never_sql(self, qd: httpx.Client) -> None:
        got = rows(qd, "SELECT count(*) FROM workers__v1 WHERE id = $1", params=["x' OR '1'='1"])
        assert got == [[0]]

    @pytest.mark.parametrize(
        ("sql", "params"),
        [("SELECT $1 + $2", [1]), ("SELECT ?", []), ("SELECT $1", [1, 2]), ("SELECT 1", [1])],
    )
    def test_wrong_param_count_is_400(self, qd: httpx.Client, sql: str, params: list[Any]) -> None:
        assert_envelope(run(qd, sql, params=params), 400, "invalid_input")

    def test_rows_beyond_the_limit_set_truncated(self, qd: httpx.Client) -> None:
        body = run(qd, "SELECT n FROM workers__v1 ORDER BY n", limit=7).json()
        assert body["rows"] == [[i] for i in range(7)]
        assert (body["row_count"], body["truncated"]) == (7, True)

    def test_a_limit_equal_to_the_row_count_is_not_truncated(self, qd: httpx.Client) -> None:
        body = run(qd, "SELECT n FROM workers__v1", limit=40).json()
        assert (body["row_count"], body["truncated"]) == (40, False)

    def test_the_default_limit_is_the_configured_one(self, qd: httpx.Client) -> None:
        body = run(qd, "SELECT n FROM workers__v1").json()
        assert (body["row_count"], body["truncated"]) == (DEFAULT_ROW_LIMIT, True)

    def test_a_limit_above_the_maximum_is_422(self, qd: httpx.Client) -> None:
        resp = run(qd, "SELECT 1", limit=MAX_ROW_LIMIT + 1)
        body = assert_envelope(resp, 422, "invalid_request")
        assert body["error"]["details"]["max_row_limit"] == MAX_ROW_LIMIT

    def test_limit_zero_answers_the_columns_only(self, qd: httpx.Client) -> None:
        body = run(qd, "SELECT id, n FROM workers__v1", limit=0).json()
        assert [c["name"] for c in body["columns"]] == ["id", "n"]
        assert (body["rows"], body["truncated"]) == ([], True)

    def test_truncated_csv_says_so_in_a_header(self, qd: httpx.Client) -> None:
        resp = run(qd, "SELECT n FROM workers__v1", limit=3, format="csv")
        assert resp.headers[TRUNCATED_HEADER] == "true"
        assert len(resp.text.splitlines()) == 4

    def test_an_empty_result_has_columns_and_no_rows(self, qd: httpx.Client) -> None:
        body = run(qd, "SELECT id FROM workers__v1 WHERE n < 0").json()
        assert body["columns"] == [{"name": "id", "type": "VARCHAR"}]
        assert (body["rows"], body["row_count"], body["truncated"]) == ([], 0, False)

    def test_an_empty_csv_result_is_the_header(self, qd: httpx.Client) -> None:
        resp = run(qd, "SELECT id FROM workers__v1 WHERE n < 0", format="csv")
        assert resp.text.strip() == '"id"'

    def test_with_and_explain_are_allowed(self, qd: httpx.Client) -> None:
        got = rows(qd, "WITH w AS (SELECT n FROM workers__v1) SELECT max(n) FROM w")
        assert got == [[39]]
        assert run(qd, "EXPLAIN SELECT * FROM workers").status_code == 200

    @pytest.mark.parametrize(
        ("sql", "needle"),
        [
            ("SELEC 1", "syntax error"),
            ("SELECT * FROM no_such_view", "no_such_view"),
            ("SELECT no_such_column FROM workers", "no_such_column"),
            ("SELECT 'x'::INTEGER", "Conversion Error"),
        ],
    )
    def test_sql_errors_are_400_with_duckdbs_message(
        self, qd: httpx.Client, sql: str, needle: str
    ) -> None:
        body = assert_envelope(run(qd, sql), 400, "invalid_input")
        assert needle in body["error"]["message"]
        assert "Traceback" not in body["error"]["message"]

    def test_concurrent_queries_all_answer(self, lake: LiveStack) -> None:
        import concurrent.futures

        def one(i: int) -> int:
            with lake.client("queryd") as c:
                got = rows(c, "SELECT count(*) FROM workers__v1 WHERE n >= $1", params=[i])
                return int(got[0][0])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(16))) == [40 - i for i in range(16)]


class TestViews:
    def test_latest_and_versioned_views(self, qd: httpx.Client) -> None:
        assert rows(qd, "SELECT count(*) FROM workers") == [[10]]
        assert rows(qd, "SELECT count(*) FROM workers__v1") == [[40]]
        assert rows(qd, "SELECT count(*) FROM workers__v2") == [[10]]
        assert rows(qd, "SELECT min(n) FROM workers") == [[100]]

    def test_one_statement_joins_versions(self, qd: httpx.Client) -> None:
        sql = (
            "SELECT count(*) FROM workers__v1 a JOIN workers__v2 b ON a.role = b.role "
            "WHERE a.city = 'Aurora'"
        )
        assert rows(qd, sql)[0][0] > 0

    def test_a_new_version_is_seen_without_restart(
        self, lake: LiveStack, qd: httpx.Client, store: Store
    ) -> None:
        name = f"roster_{secrets.token_hex(3)}"
        with lake.client("catalogd") as catalog:
            commit_table(catalog, store, name, 1, workers_table(5))
            assert rows(qd, f"SELECT count(*) FROM {name}") == [[5]]
            pid = lake.pid("queryd")
            commit_table(catalog, store, name, 2, workers_table(8))
        # The versioned view is found at once (an unknown view triggers a catalog refresh) …
        assert rows(qd, f"SELECT count(*) FROM {name}__v2") == [[8]]
        # … and the latest view follows within the refresh interval.
        eventually(lambda: rows(qd, f"SELECT count(*) FROM {name}") == [[8]])
        assert rows(qd, f"SELECT count(*) FROM {name}__v1") == [[5]]
        assert lake.pid("queryd") == pid

    def test_the_latest_view_follows_on_the_refresh_interval(
        self, lake: LiveStack, qd: httpx.Client, store: Store
    ) -> None:
        name = f"shifts_{secrets.token_hex(3)}"
        with lake.client("catalogd") as catalog:
            commit_table(catalog, store, name, 1, workers_table(3))
            assert rows(qd, f"SELECT count(*) FROM {name}") == [[3]]
            commit_table(catalog, store, name, 2, workers_table(6))
        eventually(lambda: rows(qd, f"SELECT count(*) FROM {name}") == [[6]])

    def test_views_lists_every_dataset_version(self, qd: httpx.Client) -> None:
        resp = qd.get("/v1/query/views")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        views = {v["name"]: v for v in body["views"]}
        assert views["workers"] == {
            "name": "workers",
            "source": "dataset",
            "dataset": "workers",
            "version": 2,
        }
        assert views["workers__v1"]["version"] == 1
        assert body["count"] == len(body["views"])
        assert body["catalog_refreshed_at"]

    def test_scans_push_projection_and_filter_into_the_arrow_dataset(
        self, qd: httpx.Client
    ) -> None:
        plan = rows(qd, "EXPLAIN SELECT id FROM workers__v1 WHERE n > 30")[0][1]
        assert "ARROW_SCAN" in plan
        scan = plan[plan.index("ARROW_SCAN") :]
        assert "Projections" in scan and "Filters" in scan
        assert "score" not in scan and "city" not in scan


class TestJsonLinesViews:
    def test_observer_stream_is_a_kb_view(self, lake: LiveStack, qd: httpx.Client) -> None:
        stream = f"events_{secrets.token_hex(3)}"
        kb = lake.settings.data_dir / "_kb"
        kb.mkdir(exist_ok=True)
        lines = [
            orjson.dumps({"kind": "search", "worker": "w-1", "score": 0.5}),
            b"{not json",
            orjson.dumps({"kind": "approve", "worker": "w-2", "extra": {"a": 1}}),
            b"[1, 2]",
            b"",
            orjson.dumps({"kind": "search", "worker": "w-3", "score": "high"}),
        ]
        (kb / f"{stream}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        body = run(qd, f"SELECT kind, worker, _line FROM kb_{stream} ORDER BY _line").json()
        assert body["rows"] == [["search", "w-1", 1], ["approve", "w-2", 3], ["search", "w-3", 6]]
        # A key whose values differ in type keeps them as JSON text.
        scores = rows(qd, f"SELECT score FROM kb_{stream} ORDER BY _line")
        assert scores == [["0.5"], [None], ['"high"']]

    def test_a_kb_view_joins_a_dataset(self, lake: LiveStack, qd: httpx.Client) -> None:
        stream = f"picks_{secrets.token_hex(3)}"
        kb = lake.settings.data_dir / "_kb"
        kb.mkdir(exist_ok=True)
        (kb / f"{stream}.jsonl").write_bytes(
            b"\n".join(orjson.dumps({"worker": f"w-{i}"}) for i in (1, 2, 99)) + b"\n"
        )
        sql = (
            f"SELECT w.id, w.role FROM kb_{stream} k JOIN workers__v1 w ON w.id = k.worker "
            "ORDER BY w.n"
        )
        assert rows(qd, sql) == [["w-1", ROLES[1]], ["w-2", ROLES[2]]]

    def test_an_empty_stream_is_an_empty_view(self, lake: LiveStack, qd: httpx.Client) -> None:
        stream = f"quiet_{secrets.token_hex(3)}"
        kb = lake.settings.data_dir / "_kb"
        kb.mkdir(exist_ok=True)
        (kb / f"{stream}.jsonl").write_bytes(b"")
        assert rows(qd, f"SELECT count(*) FROM kb_{stream}") == [[0]]

    def test_a_stream_of_garbage_is_an_empty_view(self, lake: LiveStack, qd: httpx.Client) -> None:
        stream = f"noise_{secrets.token_hex(3)}"
        kb = lake.settings.data_dir / "_kb"
        kb.mkdir(exist_ok=True)
        (kb / f"{stream}.jsonl").write_bytes(b"\x00\xff garbage\n{{{\n42\n")
        assert rows(qd, f"SELECT count(*) FROM kb_{stream}") == [[0]]

    def test_appended_lines_are_seen(self, lake: LiveStack, qd: httpx.Client) -> None:
        stream = f"grow_{secrets.token_hex(3)}"
        kb = lake.settings.data_dir / "_kb"
        kb.mkdir(exist_ok=True)
        path = kb / f"{stream}.jsonl"
        path.write_bytes(orjson.dumps({"i": 1}) + b"\n")
        assert rows(qd, f"SELECT count(*) FROM kb_{stream}") == [[1]]
        with path.open("ab") as fh:
            fh.write(orjson.dumps({"i": 2}) + b"\n")
        eventually(lambda: rows(qd, f"SELECT count(*) FROM kb_{stream}") == [[2]])

    def test_session_logs_are_one_sessions_view(self, lake: LiveStack, qd: httpx.Client) -> None:
        sessions = lake.settings.data_dir / "sessions"
        sessions.mkdir(exist_ok=True)
        tag = secrets.token_hex(3)
        (sessions / f"a-{tag}.jsonl").write_bytes(
            orjson.dumps({"daemon": "validatord", "session": f"{tag}-1", "ok": True}) + b"\n"
        )
        (sessions / f"b-{tag}.jsonl").write_bytes(
            b"oops\n" + orjson.dumps({"daemon": "chatd", "session": f"{tag}-2", "ok": False})
        )

        def mine() -> list[list[Any]]:
            return rows(
                qd,
                "SELECT daemon, ok, _file FROM sessions WHERE session LIKE $1 ORDER BY session",
                params=[f"{tag}-%"],
            )

        got = eventually(lambda: mine() if len(mine()) == 2 else None)
        assert got == [["validatord", True, f"a-{tag}.jsonl"], ["chatd", False, f"b-{tag}.jsonl"]]


class TestThroughGateway:
    def test_gateway_forwards_queries(self, lake: LiveStack) -> None:
        with lake.client("gateway") as gw:
            resp = run(
                gw, "SELECT count(*) AS n FROM workers__v1 WHERE role = $1", params=["Welder"]
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["rows"] == [[10]]
            csv = run(gw, "SELECT 1 AS one", format="csv")
            assert csv.text.splitlines() == ['"one"', "1"]
            assert_envelope(run(gw, "DROP VIEW workers"), 400, "invalid_input")


class TestQueryClient:
    async def test_typed_client_answers_models_and_rebuilds_errors(self, lake: LiveStack) -> None:
        async with HttpClient() as http:
            client = QueryClient(http.client_for("queryd", lake.url("queryd")))
            answer = await client.query(
                "SELECT id FROM workers__v1 WHERE n < $1 ORDER BY n", [2], limit=1
            )
            assert answer.rows == [["w-0"]] and answer.truncated
            assert answer.columns[0].type == "VARCHAR"
            csv = await client.query_tabular("SELECT 1 AS one", fmt=QueryFormat.CSV)
            assert csv.body.decode().splitlines() == ['"one"', "1"] and csv.row_count == 1
            arrow = await client.query_tabular(
                "SELECT n FROM workers__v1", fmt=QueryFormat.ARROW, limit=5
            )
            assert pa.ipc.open_stream(arrow.body).read_all().num_rows == 5
            assert arrow.truncated
            with pytest.raises(InvalidInput) as refused:
                await client.query("COPY workers TO '/tmp/x'")
            assert refused.value.trace_id
            with pytest.raises(UnprocessableEntity):
                await client.query("SELECT 1", limit=MAX_ROW_LIMIT + 1)
            views = await client.views()
            assert "workers__v2" in {v.name for v in views.views}


class TestOpenApi:
    def test_routes_have_summaries(self, qd: httpx.Client) -> None:
        paths = qd.get("/openapi.json").json()["paths"]
        assert paths["/v1/query"]["post"]["summary"].startswith("Run one read-only SQL")
        assert "text/csv" in paths["/v1/query"]["post"]["responses"]["200"]["content"]
        assert paths["/v1/query/views"]["get"]["summary"]
