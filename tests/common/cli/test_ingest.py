"""`lakehouse ingest` as a subprocess against a real gateway (bearer auth), catalogd and ingestd."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lakehouse_common.ops.stack import free_port
from tests.support.stack import LiveStack

TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("ingest-cli"), {"gateway": {"auth_token": TOKEN}}
    )
    with live.running("catalogd", "ingestd", "gateway"):
        yield live


def lakehouse(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_common.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**clean, "COLUMNS": "160", **(env or {})},
    )


def dataset_name() -> str:
    return f"cli_{secrets.token_hex(4)}"


@pytest.fixture
def roster(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    lines = [f"w-{i},Worker {i},Welder,{20 + i % 40}" for i in range(5000)]
    path.write_text("id,name,role,age\n" + "\n".join(lines) + "\n")
    return path


def catalog_versions(stack: LiveStack, name: str) -> list[int]:
    with stack.client("catalogd") as catalog:
        resp = catalog.get(f"/v1/catalog/datasets/{name}")
    if resp.status_code == 404:
        return []
    versions: list[int] = resp.json()["versions"]
    return versions


class TestIngestCommand:
    def test_uploads_through_the_gateway_and_prints_the_manifest(
        self, stack: LiveStack, roster: Path
    ) -> None:
        name = dataset_name()
        gateway = stack.url("gateway")
        run = lakehouse(
            "ingest", str(roster), "--dataset", name, "--gateway", gateway, "--token", TOKEN
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert name in run.stdout and "5,000" in run.stdout
        for column, type_ in [("id", "VARCHAR"), ("age", "BIGINT"), ("role", "VARCHAR")]:
            assert any(column in line and type_ in line for line in run.stdout.splitlines())
        assert "roster.csv" in run.stderr  # the progress bar names the file
        assert catalog_versions(stack, name) == [1]

    def test_json_output_and_append_mode_with_the_token_from_the_environment(
        self, stack: LiveStack, roster: Path, tmp_path: Path
    ) -> None:
        name = dataset_name()
        env = {
            "LAKEHOUSE_GATEWAY__AUTH_TOKEN": TOKEN,
            "LAKEHOUSE_GATEWAY_URL": stack.url("gateway"),
        }
        first = lakehouse("ingest", str(roster), "-d", name, "--json", env=env)
        assert first.returncode == 0, first.stderr
        more = tmp_path / "more.jsonl"
        more.write_text('{"id": "w-9000", "name": "New", "age": 33}\n')
        second = lakehouse("ingest", str(more), "-d", name, "--mode", "append", "--json", env=env)
        assert second.returncode == 0, second.stderr
        manifest = json.loads(second.stdout)
        assert (manifest["version"], manifest["row_count"]) == (2, 5001)
        assert manifest["source"]["filename"] == "more.jsonl"

    def test_rejected_rows_are_listed_and_exit_1(self, stack: LiveStack, tmp_path: Path) -> None:
        name = dataset_name()
        bad = tmp_path / "bad.csv"
        bad.write_text("id,name\nw-1,Ann\n,Nobody\nw-3,Cy\n,Again\n")
        run = lakehouse(
            "ingest", str(bad), "-d", name, "--gateway", stack.url("gateway"), "--token", TOKEN
        )
        assert run.returncode == 1, run.stdout + run.stderr
        assert "422" in run.stderr and "required value is missing" in run.stderr
        table = re.findall(r"│\s*(\d+)\s*│\s*(\w+)\s*│\s*required value is missing", run.stderr)
        assert table == [("2", "id"), ("4", "id")]
        assert catalog_versions(stack, name) == []

    def test_without_the_token_the_gateway_answers_401_exit_1(
        self, stack: LiveStack, roster: Path
    ) -> None:
        run = lakehouse(
            "ingest", str(roster), "-d", dataset_name(), "--gateway", stack.url("gateway")
        )
        assert run.returncode == 1
        assert "401" in run.stderr and "unauthorized" in run.stderr

    def test_missing_file_is_exit_2(self, tmp_path: Path) -> None:
        run = lakehouse(
            "ingest", str(tmp_path / "nope.csv"), "-d", "x", "--gateway", "http://127.0.0.1:9"
        )
        assert run.returncode == 2
        assert "does not exist" in run.stderr

    def test_unknown_extension_needs_format_exit_2(self, tmp_path: Path) -> None:
        path = tmp_path / "data.txt"
        path.write_text("a\n1\n")
        run = lakehouse("ingest", str(path), "-d", "x", "--gateway", "http://127.0.0.1:9")
        assert run.returncode == 2
        assert "--format" in run.stderr

    def test_bad_dataset_name_is_exit_2(self, roster: Path) -> None:
        run = lakehouse("ingest", str(roster), "-d", "Bad-Name", "--gateway", "http://127.0.0.1:9")
        assert run.returncode == 2

    def test_unreachable_gateway_is_exit_1(self, roster: Path) -> None:
        gateway = f"http://127.0.0.1:{free_port()}"
        run = lakehouse("ingest", str(roster), "-d", "x", "--gateway", gateway)
        assert run.returncode == 1
        assert "cannot reach the gateway" in run.stderr

    def test_explicit_format_overrides_the_extension(
        self, stack: LiveStack, tmp_path: Path
    ) -> None:
        path = tmp_path / "rows.txt"
        path.write_text('{"id": "a"}\n')
        name = dataset_name()
        run = lakehouse(
            "ingest", str(path), "-d", name, "--format", "jsonl",
            "--gateway", stack.url("gateway"), "--token", TOKEN, "--json",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["source"]["format"] == "jsonl"


def test_gateway_forwards_ingest_errors_unchanged(stack: LiveStack) -> None:
    with httpx.Client(base_url=stack.url("gateway"), timeout=30.0) as gw:
        resp = gw.post(
            f"/v1/ingest/{dataset_name()}",
            content=b"",
            headers={"Content-Type": "text/csv", "Authorization": f"Bearer {TOKEN}"},
        )
    assert resp.status_code == 400
    assert resp.json()["error"]["details"]["errors"][0]["row"] is None
