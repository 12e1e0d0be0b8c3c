"""The lake end to end through the gateway, on both backends (issue 3's "done when").

Generate 100k workers with the CLI, ingest them with the CLI through the gateway, group by role
with queryd; ingest a second version and the first still answers as `workers__v1`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import LiveStack, backend_config

LAKE = ("storaged", "catalogd", "ingestd", "queryd", "gateway")


@pytest.fixture(scope="module", params=["fs", "s3"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp(f"lake-{request.param}"), backend_config(request, request.param)
    )
    with live.running(*LAKE):
        yield live


def lakehouse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_common.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def query(stack: LiveStack, sql: str, **extra: Any) -> dict[str, Any]:
    with stack.client("gateway") as gw:
        resp = gw.post("/v1/query", json={"sql": sql, **extra}, timeout=120)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.mark.slow
def test_generate_ingest_query_and_keep_old_versions(stack: LiveStack, tmp_path: Path) -> None:
    gateway = stack.url("gateway")
    first = tmp_path / "workers.parquet"
    gen = lakehouse("gen-workers", "--rows", "100000", "--out", str(first), "--seed", "7")
    assert gen.returncode == 0, gen.stderr
    ingest = lakehouse("ingest", str(first), "--dataset", "workers", "--gateway", gateway)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr

    by_role = query(stack, "SELECT role, count(*) AS n FROM workers GROUP BY role ORDER BY n DESC")
    assert [c["name"] for c in by_role["columns"]] == ["role", "n"]
    assert sum(row[1] for row in by_role["rows"]) == 100_000
    assert len(by_role["rows"]) >= 20  # ~30 staffing roles

    second = tmp_path / "workers2.parquet"
    assert (
        lakehouse("gen-workers", "--rows", "5000", "--out", str(second), "--seed", "8").returncode
        == 0
    )
    ingest2 = lakehouse("ingest", str(second), "--dataset", "workers", "--gateway", gateway)
    assert ingest2.returncode == 0, ingest2.stdout + ingest2.stderr

    assert query(stack, "SELECT count(*) FROM workers")["rows"] == [[5000]]
    assert query(stack, "SELECT count(*) FROM workers__v1")["rows"] == [[100_000]]
    assert query(stack, "SELECT count(*) FROM workers__v2")["rows"] == [[5000]]
    point = query(stack, "SELECT id, role, state FROM workers__v1 WHERE id = $1", params=["w-42"])
    assert point["row_count"] == 1 and point["rows"][0][0] == "w-42"

    with stack.client("gateway") as gw:
        detail = gw.get("/v1/catalog/datasets/workers").json()
    assert detail["versions"] == [1, 2]
    assert detail["latest"]["row_count"] == 5000
