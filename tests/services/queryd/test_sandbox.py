"""queryd's sandbox against the live daemon, on both Store backends: every statement that is
not one read-only SELECT/EXPLAIN over views is a 400 with a reason, and no file outside the lake
is ever read."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.query import rows, run
from tests.support.stack import LiveStack

pytestmark = pytest.mark.usefixtures("workers")

FORBIDDEN = [
    # (statement, a word the refusal names)
    ("SELECT 1; SELECT 2", "exactly one"),
    ("SELECT 1;;SELECT * FROM workers", "exactly one"),
    ("COPY workers TO '/tmp/queryd-copy.csv'", "COPY"),
    ("COPY workers FROM '/etc/passwd'", "COPY"),
    ("ATTACH '/tmp/queryd-attach.db' AS x", "ATTACH"),
    ("DETACH x", "DETACH"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("PRAGMA version", "PRAGMA"),
    ("SET enable_external_access = true", "SET"),
    ("SET threads = 1", "SET"),
    ("RESET lock_configuration", "SET"),
    ("USE memory", "SET"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("CREATE OR REPLACE VIEW workers AS SELECT 1", "CREATE"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE"),
    ("CREATE MACRO m(x) AS x", "CREATE"),
    ("INSERT INTO workers VALUES ('w', 'r', 'c', 1, 1.0)", "INSERT"),
    ("UPDATE workers SET n = 0", "UPDATE"),
    ("DELETE FROM workers", "DELETE"),
    ("DROP VIEW workers", "DROP"),
    ("ALTER VIEW workers RENAME TO w2", "ALTER"),
    ("CALL pragma_version()", "CALL"),
    ("CHECKPOINT", "CALL"),
    ("BEGIN TRANSACTION", "TRANSACTION"),
    ("VACUUM", "VACUUM"),
    ("EXPORT DATABASE '/tmp/queryd-export'", "EXPORT"),
    ("IMPORT DATABASE '/tmp/queryd-export'", "PRAGMA"),
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("PIVOT workers ON role USING count(*)", "MULTI"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("SELECT * FROM read_parquet('/tmp/x.parquet')", "read_parquet"),
    ("SELECT * FROM parquet_scan('/tmp/x.parquet')", "parquet_scan"),
    ("SELECT * FROM parquet_metadata('/tmp/x.parquet')", "parquet_metadata"),
    ("SELECT * FROM read_json('/etc/passwd')", "read_json"),
    ("SELECT * FROM read_ndjson_objects('/etc/passwd')", "read_ndjson_objects"),
    ("SELECT * FROM read_text('/etc/passwd')", "read_text"),
    ("SELECT * FROM read_blob('/etc/passwd')", "read_blob"),
    ("SELECT * FROM glob('/etc/*')", "glob"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
    ("SELECT * FROM query('SELECT 1')", "query"),
    ("SELECT * FROM query_table('workers')", "query_table"),
    ("SELECT * FROM arrow_scan(1, 2, 3)", "arrow_scan"),
    ("SELECT * FROM system.main.read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM '/etc/passwd'", "not a view name"),
    ('SELECT * FROM "/etc/passwd"', "not a view name"),
    ("SELECT * FROM 'workers.parquet'", "not a view name"),
    ("DESCRIBE '/etc/passwd'", "not a view name"),
    ("SHOW '/etc/passwd'", "not a view name"),
    ("SUMMARIZE '/etc/passwd'", "not a view name"),
    ("WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", "read_csv"),
    (
        "SELECT * FROM workers WHERE id IN (SELECT content FROM read_text('/etc/hosts'))",
        "read_text",
    ),
    ("SELECT (SELECT count(*) FROM glob('/*')) AS n", "glob"),
    ("SELECT * FROM workers, LATERAL (SELECT * FROM read_text(workers.id))", "read_text"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/queryd-explain'", "EXPLAIN COPY"),
    ("EXPLAIN /* hidden */ INSERT INTO workers SELECT * FROM workers", "EXPLAIN INSERT"),
    ("EXPLAIN SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT json_execute_serialized_sql('{}')", "json_execute_serialized_sql"),
    ("UPDATE EXTENSIONS", "unsupported statement"),
]


class TestSandbox:
    @pytest.mark.parametrize(("sql", "reason"), FORBIDDEN, ids=[s for s, _ in FORBIDDEN])
    def test_forbidden_statement_is_400_with_a_reason(
        self, qd: httpx.Client, sql: str, reason: str
    ) -> None:
        body = assert_envelope(run(qd, sql), 400, "invalid_input")
        assert reason in body["error"]["message"]

    def test_the_views_are_intact_after_every_refusal(self, qd: httpx.Client) -> None:
        for sql, _ in FORBIDDEN:
            run(qd, sql)
        assert rows(qd, "SELECT count(*) FROM workers__v1") == [[40]]
        assert rows(qd, "SELECT current_setting('enable_external_access')") == [[False]]
        assert rows(qd, "SELECT current_setting('lock_configuration')") == [[True]]
        assert not Path("/tmp/queryd-copy.csv").exists()
        assert not Path("/tmp/queryd-export").exists()

    def test_no_file_outside_the_lake_is_read(
        self, lake: LiveStack, qd: httpx.Client, tmp_path: Path
    ) -> None:
        secret = f"s3cr3t-{secrets.token_hex(8)}"
        path = tmp_path / "secret.csv"
        path.write_text(f"token\n{secret}\n")
        (tmp_path / "secret.jsonl").write_text(f'{{"token": "{secret}"}}\n')
        # A symlink planted among the observer streams is not followed either.
        kb = lake.settings.data_dir / "_kb"
        kb.mkdir(exist_ok=True)
        (kb / "planted.jsonl").symlink_to(tmp_path / "secret.jsonl")
        attempts = [
            (f"SELECT * FROM read_csv('{path}')", []),
            (f"SELECT * FROM read_csv_auto('{path}', header = true)", []),
            (f"SELECT * FROM read_text('{path}')", []),
            (f"SELECT * FROM read_blob('{path}')", []),
            (f"SELECT * FROM read_json_auto('{tmp_path}/secret.jsonl')", []),
            (f"SELECT * FROM '{path}'", []),
            (f'SELECT * FROM "{path}"', []),
            (f"FROM '{tmp_path}/*.csv'", []),
            (f"SELECT * FROM glob('{tmp_path}/*')", []),
            ("SELECT * FROM read_text($1)", [str(path)]),
            ("SELECT * FROM read_csv([$1])", [str(path)]),
            (f"SELECT * FROM query('SELECT * FROM read_text(''{path}'')')", []),
            (f"EXPLAIN ANALYZE SELECT * FROM read_csv('{path}')", []),
            (f"ATTACH '{path}' AS s", []),
            (f"COPY workers FROM '{path}'", []),
            (f"SELECT content FROM read_text('{path}') UNION ALL SELECT id FROM workers", []),
            ("SELECT * FROM kb_planted", []),
            ("SELECT * FROM read_text('/etc/passwd')", []),
            ("SELECT * FROM '/etc/passwd'", []),
        ]
        for sql, params in attempts:
            resp = run(qd, sql, params=params)
            assert 400 <= resp.status_code < 500, (sql, resp.text)
            assert secret not in resp.text, sql
            assert "root:x:0:0" not in resp.text, sql
        with lake.client("gateway") as gw:
            resp = run(gw, f"SELECT * FROM read_csv('{path}')")
            assert resp.status_code == 400 and secret not in resp.text
