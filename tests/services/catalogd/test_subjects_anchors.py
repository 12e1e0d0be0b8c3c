"""catalogd's checkpoints against a real daemon (SPEC §8, issue 18): the verify route names the
checkpoint a cut log contradicts, a last checkpoint is written at shutdown, a torn tail is
repaired at start (and shows in verify), a witness failure shows as degraded and is retried,
and `lakehouse audit verify-all` checks the data dir offline."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lakehouse_common.audit.chain import append_rows, build_row
from lakehouse_common.audit.keys import load_keyring
from lakehouse_common.cli import app
from lakehouse_common.config import audit_key_path
from lakehouse_common.contracts.catalog import part_key
from lakehouse_common.store.settings import store_from_settings
from tests.support.metrics import metric
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("anchors")


@pytest.fixture(scope="module")
def stack(root: Path) -> Iterator[LiveStack]:
    extra = {"audit": {"checkpoint_interval_s": 0.1, "witness_dir": str(root / "blocker" / "w")}}
    live = LiveStack.create(root, extra)
    try:
        live.start("catalogd")
        data = os.urandom(64)
        key = part_key("people", 1, 0)
        with store_from_settings(live.settings) as store:
            store.put_bytes("lakehouse", key, data)
        commit = {
            "version": 1,
            "schema": [{"name": "id", "type": "VARCHAR"}, {"name": "phone", "type": "VARCHAR"}],
            "files": [
                {
                    "key": key,
                    "rows": 1,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            ],
            "row_count": 1,
        }
        with live.client("catalogd") as client:
            resp = client.post("/v1/catalog/datasets/people/versions", json=commit)
            assert resp.status_code == 201, resp.text
            for sid in ("A-1", "A-2", "A-3"):
                resp = client.put(
                    f"/v1/catalog/subjects/{sid}",
                    json={"dataset": "people", "row_key": sid.lower(), "pii_fields": ["phone"]},
                )
                assert resp.status_code == 201, resp.text
        yield live
    finally:
        live.stop()


@pytest.fixture
def cd(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("catalogd") as client:
        yield client


def append(cd: httpx.Client, sid: str, n: int = 1) -> None:
    for _ in range(n):
        resp = cd.post(
            f"/v1/catalog/subjects/{sid}/audit",
            json={"accessor": {"daemon": "tests", "purpose": "check"}, "fields": ["phone"]},
        )
        assert resp.status_code == 201, resp.text


def verify(cd: httpx.Client, sid: str) -> dict[str, Any]:
    resp = cd.get(f"/v1/catalog/subjects/{sid}/audit/verify")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def until(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def log_path(stack: LiveStack, sid: str) -> Path:
    return stack.settings.data_dir / "subjects" / "audit" / f"{sid}.jsonl"


def verify_all(stack: LiveStack) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["audit", "verify-all", "--config", str(stack.config_path), "--json"]
    )
    return result.exit_code, json.loads(result.stdout)


class TestVerifyRoute:
    def test_a_cut_log_names_the_checkpoint_it_contradicts(
        self, cd: httpx.Client, stack: LiveStack
    ) -> None:
        append(cd, "A-1", 3)
        # A checkpoint may land between the appends (anchoring 1 or 2 rows): wait for all 3.
        body = until(lambda: (v := verify(cd, "A-1"))["anchored"] and v["unanchored"] == 0 and v)
        assert body
        assert body["verified"] and body["checkpoint"]["count"] == 3 and body["unanchored"] == 0
        path = log_path(stack, "A-1")
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:1]))
        cut = verify(cd, "A-1")
        assert cut["verified"] is False and cut["count"] == 1
        assert f"checkpoint {body['checkpoint']['seq']} " in cut["error"]
        assert "holds 1 rows" in cut["error"]


class TestUpgrade:
    def test_a_log_written_before_checkpoints_existed_is_anchored_at_start(
        self, cd: httpx.Client, stack: LiveStack
    ) -> None:
        resp = cd.put(
            "/v1/catalog/subjects/A-9",
            json={"dataset": "people", "row_key": "a-9", "pii_fields": ["phone"]},
        )
        assert resp.status_code == 201, resp.text
        stack.kill_9("catalogd")
        path = log_path(stack, "A-9")  # as an earlier version wrote it: no checkpoint names it
        keyring = load_keyring(audit_key_path(stack.settings))
        row = build_row("A-9", daemon="tests", purpose="check", action="read", fields=["phone"])
        stored = append_rows(path, keyring, [row, row], daemon="tests")
        stack.start("catalogd")
        body = until(lambda: (v := verify(cd, "A-9"))["anchored"] and v)
        assert body["verified"] and body["unanchored"] == 0
        assert (body["checkpoint"]["count"], body["checkpoint"]["tip"]) == (2, stored[-1]["hmac"])
        assert "anchoring audit logs no checkpoint names yet" in stack.log("catalogd")


class TestOffline:
    def test_verify_all_on_the_data_dir_then_a_truncated_log(
        self, cd: httpx.Client, stack: LiveStack
    ) -> None:
        append(cd, "A-3", 3)
        until(lambda: (v := verify(cd, "A-3"))["anchored"] and v["unanchored"] == 0)
        until(lambda: verify_all(stack)[1]["anchors"]["unwitnessed"] == 0)
        code, report = verify_all(stack)
        by_id = {log["subject_id"]: log for log in report["logs"]}
        assert by_id["A-3"]["verified"] and by_id["A-3"]["anchored"]
        assert report["anchors"]["verified"] is True
        path = log_path(stack, "A-3")
        os.truncate(path, len(path.read_bytes().splitlines(keepends=True)[0]))
        code, report = verify_all(stack)
        assert code == 1
        bad = {log["subject_id"]: log for log in report["logs"]}["A-3"]
        assert bad["verified"] is False and "checkpoint" in bad["error"]


class TestWitnessFailure:
    def test_publish_failure_is_degraded_counted_and_retried(
        self, cd: httpx.Client, stack: LiveStack, root: Path
    ) -> None:
        blocker = root / "blocker"
        moved = root / "blocker-ok"
        blocker.rename(moved)
        blocker.write_bytes(b"")  # the witness dir's parent is now a file
        try:
            append(cd, "A-2")
            degraded = until(lambda: cd.get("/health").json().get("degraded"))
            assert degraded is True
            check = cd.get("/health").json()["checks"]["audit_witness"]
            assert check["status"] == "degraded" and "cannot publish" in check["error"]
            assert metric(cd, "lakehouse_audit_witness_publish_failures_total") >= 1
            assert metric(cd, "lakehouse_audit_witness_lag_checkpoints") >= 1
        finally:
            blocker.unlink()
            moved.rename(blocker)
        assert until(lambda: cd.get("/health").json().get("degraded") is False)
        assert metric(cd, "lakehouse_audit_witness_lag_checkpoints") == 0


class TestRestart:
    def test_shutdown_checkpoint_then_torn_tail_repaired_at_start(
        self, cd: httpx.Client, stack: LiveStack
    ) -> None:
        append(cd, "A-2", 2)
        count = verify(cd, "A-2")["count"]
        stack.stop()  # at most 0.1 s after the append: the last checkpoint is the shutdown's
        checkpoints = stack.settings.data_dir / "subjects" / "checkpoints.jsonl"
        last = json.loads(checkpoints.read_bytes().splitlines()[-1])
        heads = [json.loads(line)["heads"] for line in checkpoints.read_bytes().splitlines()]
        assert any(h.get("A-2", [0])[0] == count for h in heads), last
        path = log_path(stack, "A-2")
        torn = b'{"accessor":{"dae'
        with path.open("ab") as handle:
            handle.write(torn)
        stack.start("catalogd")
        with stack.client("catalogd") as client:
            body = verify(client, "A-2")
            assert body["verified"] is True and body["count"] == count + 1
            assert body["repairs"][-1]["bytes_removed"] == len(torn)
            assert body["repairs"][-1]["sha256"] == hashlib.sha256(torn).hexdigest()
            append(client, "A-2")  # no longer refused
        assert "repaired a torn audit log" in stack.log("catalogd")
