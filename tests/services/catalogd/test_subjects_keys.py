"""catalogd's audit key (SPEC §8, issue 7): refused keys stop the start with the reason, a key
rotation starts a new epoch without a restart, and an answered append survives kill -9.

One catalogd stack for the module; the refusal tests start catalogd against broken copies of
the key and expect it to exit naming what is wrong.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import ROTATION_ACTION, key_id, load_key, rotate_key
from lakehouse_common.audit.keys import Rotation, retired_dir
from lakehouse_common.cli import app
from lakehouse_common.config import audit_key_path
from lakehouse_common.contracts.catalog import part_key
from lakehouse_common.ops.stack import StackError, stack_status
from lakehouse_common.store.settings import store_from_settings
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("subject-keys"))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def key_file(stack: LiveStack) -> Path:
    return audit_key_path(stack.settings)


@pytest.fixture(scope="module")
def key_bytes(key_file: Path) -> bytes:
    return key_file.read_bytes()


@pytest.fixture
def restore_key(key_file: Path, key_bytes: bytes) -> Iterator[None]:
    yield
    key_file.write_bytes(key_bytes)
    key_file.chmod(0o600)


def refused(stack: LiveStack, reason: str) -> None:
    with pytest.raises(StackError) as caught:
        stack.start("catalogd", timeout_s=60)
    assert "catalogd exited" in str(caught.value)
    assert reason in stack.log("catalogd")
    assert not any(s.running for s in stack_status(stack.settings) if s.name == "catalogd")


class TestKeyRefusal:
    def test_missing_key_is_refused(
        self, stack: LiveStack, key_file: Path, restore_key: None
    ) -> None:
        key_file.unlink()
        refused(stack, "is missing")

    def test_key_of_31_bytes_is_refused(
        self, stack: LiveStack, key_file: Path, restore_key: None
    ) -> None:
        key_file.write_bytes(b"k" * 31)
        refused(stack, "is too short: 31 bytes, at least 32 required")

    def test_key_readable_by_others_is_refused(
        self, stack: LiveStack, key_file: Path, restore_key: None
    ) -> None:
        key_file.chmod(0o644)
        refused(stack, "is readable by group/other users (mode 0644)")


@pytest.fixture(scope="module")
def running(stack: LiveStack) -> Iterator[httpx.Client]:
    """catalogd with the good key, a dataset and one subject to audit."""
    stack.start("catalogd")
    data = os.urandom(64)
    key = part_key("people", 1, 0)
    with store_from_settings(stack.settings) as store:
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
    with stack.client("catalogd") as client:
        assert client.post("/v1/catalog/datasets/people/versions", json=commit).status_code == 201
        for sid in ("P-1", "P-2"):
            resp = client.put(
                f"/v1/catalog/subjects/{sid}",
                json={"dataset": "people", "row_key": sid.lower(), "pii_fields": ["phone"]},
            )
            assert resp.status_code == 201, resp.text
        yield client


def append(client: httpx.Client, sid: str) -> dict[str, Any]:
    resp = client.post(
        f"/v1/catalog/subjects/{sid}/audit",
        json={"accessor": {"daemon": "tests", "purpose": "check"}, "fields": ["phone"]},
    )
    assert resp.status_code == 201, resp.text
    row: dict[str, Any] = resp.json()
    return row


@dataclass(frozen=True)
class Rotated:
    old_key: bytes
    before: list[dict[str, Any]]
    rotation: Rotation
    after: dict[str, Any]


@pytest.fixture(scope="module")
def rotated(running: httpx.Client, key_file: Path) -> Rotated:
    """P-1 gets two rows, the key is rotated, then P-1 gets one more (each test may run alone)."""
    old_key = load_key(key_file)
    before = [append(running, "P-1"), append(running, "P-1")]
    rotation = rotate_key(key_file)  # what `lakehouse audit rotate` does; no restart
    return Rotated(old_key, before, rotation, append(running, "P-1"))


class TestRotation:
    def test_rotation_starts_a_new_epoch_recording_the_previous_tip(
        self, running: httpx.Client, rotated: Rotated
    ) -> None:
        old_key, before, rotation, after = (
            rotated.old_key,
            rotated.before,
            rotated.rotation,
            rotated.after,
        )
        rows = running.get("/v1/catalog/subjects/P-1/audit").json()["rows"]
        epoch_row = rows[2]
        assert epoch_row["action"] == ROTATION_ACTION
        assert epoch_row["prev_hmac"] == before[-1]["hmac"]
        assert epoch_row["fields"] == {
            "epoch": rotation.epoch,
            "key_id": rotation.key_id,
            "previous_epoch": rotation.epoch - 1,
            "previous_key_id": key_id(old_key),
            "previous_tip": before[-1]["hmac"],
        }
        assert rows[3] == after and after["prev_hmac"] == epoch_row["hmac"]
        result = running.get("/v1/catalog/subjects/P-1/audit/verify").json()
        assert (result["verified"], result["count"], result["epochs"]) == (True, 4, 2)

    def test_offline_verification_needs_both_keys(
        self, rotated: Rotated, stack: LiveStack, key_file: Path
    ) -> None:
        log = stack.settings.data_dir / "subjects" / "audit" / "P-1.jsonl"
        old = sorted(retired_dir(key_file).glob("epoch-*.key"))[0]
        runner = CliRunner()
        both = runner.invoke(
            app, ["audit", "verify", str(log), "--key-file", str(key_file), "--key-file", str(old)]
        )
        assert both.exit_code == 0, both.stdout
        only_new = runner.invoke(app, ["audit", "verify", str(log), "--key-file", str(key_file)])
        assert only_new.exit_code == 1
        assert '"error":"line 1 (seq 1): hmac mismatch' in only_new.stdout
        only_old = runner.invoke(app, ["audit", "verify", str(log), "--key-file", str(old)])
        assert only_old.exit_code == 1
        assert "line 3 (seq 3): key rotation to key" in only_old.stdout
        table = runner.invoke(
            app, ["audit", "verify-all", "--config", str(stack.config_path)]
        )  # the configured key ring: current + retired
        assert table.exit_code == 0, table.stdout
        assert "1 logs: 1 verified, 0 failed" in table.stdout

    def test_a_key_made_unusable_fails_appends_closed(
        self, running: httpx.Client, key_file: Path, restore_key: None
    ) -> None:
        current = key_file.read_bytes()
        key_file.chmod(0o640)
        resp = running.post(
            "/v1/catalog/subjects/P-1/audit",
            json={"accessor": {"daemon": "tests", "purpose": "check"}},
        )
        assert resp.status_code == 503, resp.text
        assert "readable by group/other" in resp.json()["error"]["message"]
        key_file.write_bytes(current)
        key_file.chmod(0o600)
        append(running, "P-1")


class TestDurability:
    @pytest.mark.fault
    def test_answered_appends_survive_kill_9(self, running: httpx.Client, stack: LiveStack) -> None:
        rows = [append(running, "P-2") for _ in range(5)]
        stack.kill_9("catalogd")
        stack.start("catalogd")
        result = running.get("/v1/catalog/subjects/P-2/audit/verify").json()
        assert result["verified"] is True
        assert result["count"] >= 5 and result["tip"] == rows[-1]["hmac"]
        assert append(running, "P-2")["prev_hmac"] == rows[-1]["hmac"]
