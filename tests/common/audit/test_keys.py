"""Audit keys (SPEC §8, issue 7): private key files, generation, rotation into epochs, chains
that span epochs, and the `lakehouse audit keygen|rotate|verify-all` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import (
    GENESIS,
    ROTATION_ACTION,
    AuditChainError,
    AuditKeyError,
    Keyring,
    append_row,
    append_rows,
    build_row,
    canonical_bytes,
    canonical_json,
    generate_key,
    key_id,
    load_keyring,
    load_private_key,
    rotate_key,
    row_hmac,
    verify_log,
)
from lakehouse_common.audit.keys import retired_dir
from lakehouse_common.cli import app

OLD = b"o" * 32
NEW = b"n" * 48
TS = "2026-05-02T09:14:03.461439210Z"


def row(n: int = 0) -> dict[str, Any]:
    return build_row(
        "WORKER-1", daemon="queryd", purpose="query", action="read", fields=[f"f{n}"], ts=TS
    )


class TestPrivateKey:
    def test_generated_key_is_private_and_long_enough(self, tmp_path: Path) -> None:
        path = tmp_path / "keys" / "audit.key"
        key = generate_key(path)
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert load_private_key(path) == key and len(key) == 64

    def test_generate_never_overwrites(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.key"
        generate_key(path)
        with pytest.raises(FileExistsError):
            generate_key(path)

    @pytest.mark.parametrize(
        ("mode", "why"), [(0o644, "readable by group/other"), (0o620, "writable by group/other")]
    )
    def test_key_other_users_can_reach_is_refused(
        self, tmp_path: Path, mode: int, why: str
    ) -> None:
        path = tmp_path / "audit.key"
        generate_key(path)
        path.chmod(mode)
        with pytest.raises(AuditKeyError, match=why):
            load_private_key(path)

    def test_31_bytes_are_refused_32_accepted(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.key"
        path.write_bytes(b"k" * 31)
        path.chmod(0o600)
        with pytest.raises(AuditKeyError, match="too short: 31 bytes"):
            load_private_key(path)
        path.write_bytes(b"k" * 32)
        assert load_private_key(path) == b"k" * 32

    def test_missing_key_names_keygen(self, tmp_path: Path) -> None:
        with pytest.raises(AuditKeyError, match="missing.*lakehouse audit keygen"):
            load_private_key(tmp_path / "none.key")


class TestRotateKey:
    def test_rotation_retires_the_key_and_writes_a_new_one(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.key"
        first = generate_key(path)
        rotation = rotate_key(path)
        second = rotate_key(path)
        keyring = load_keyring(path)
        assert (rotation.epoch, second.epoch, keyring.epoch) == (2, 3, 3)
        assert rotation.previous_key_id == key_id(first)
        assert keyring.retired[1] == first
        assert key_id(keyring.retired[2]) == rotation.key_id == second.previous_key_id
        assert keyring.current_id == second.key_id
        for retired in retired_dir(path).iterdir():
            assert retired.stat().st_mode & 0o777 == 0o600

    def test_a_rotation_stopped_halfway_is_resumed(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.key"
        key = generate_key(path)
        # Crash after the key was retired, before the new key replaced it.
        retired_dir(path).mkdir(mode=0o700)
        (retired_dir(path) / "epoch-0001.key").write_bytes(key)
        (retired_dir(path) / "epoch-0001.key").chmod(0o600)
        assert load_keyring(path).epoch == 1
        rotation = rotate_key(path)
        assert rotation.epoch == 2 and rotation.previous_key_id == key_id(key)
        assert load_keyring(path).retired == {1: key}


class TestChainAcrossEpochs:
    @pytest.fixture
    def log(self, tmp_path: Path) -> Path:
        path = tmp_path / "WORKER-1.jsonl"
        append_row(path, OLD, row(1))
        append_row(path, OLD, row(2))
        stored = append_rows(path, Keyring(NEW, 2, {1: OLD}), [row(3)])
        assert [r["action"] for r in stored] == [ROTATION_ACTION, "read"]
        append_row(path, Keyring(NEW, 2, {1: OLD}), row(4))
        return path

    def lines(self, log: Path) -> list[bytes]:
        return log.read_bytes().splitlines(keepends=True)

    def test_epoch_start_row_records_the_previous_tip(self, log: Path) -> None:
        rows = [json.loads(line) for line in self.lines(log)]
        assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
        assert rows[2]["fields"] == {
            "epoch": 2,
            "key_id": key_id(NEW),
            "previous_epoch": 1,
            "previous_key_id": key_id(OLD),
            "previous_tip": rows[1]["hmac"],
        }
        assert rows[2]["prev_hmac"] == rows[1]["hmac"]
        assert rows[3]["prev_hmac"] == rows[2]["hmac"]

    def test_verify_spans_epochs_with_both_keys(self, log: Path) -> None:
        result = verify_log(log, Keyring.of(NEW, OLD))
        assert (result.verified, result.count, result.epochs) == (True, 5, 2)
        assert result.tip == json.loads(self.lines(log)[-1])["hmac"]

    def test_either_key_alone_fails(self, log: Path) -> None:
        old_only = verify_log(log, OLD)
        assert (old_only.verified, old_only.count) == (False, 2)
        assert old_only.error is not None and "not among the keys given" in old_only.error
        new_only = verify_log(log, NEW)
        assert (new_only.verified, new_only.count, new_only.tip) == (False, 0, GENESIS)

    def test_rotation_row_with_another_previous_tip_fails(self, log: Path) -> None:
        raw = self.lines(log)
        forged = json.loads(raw[2])
        forged["fields"]["previous_tip"] = "f" * 64
        # Re-sign it with the new key: only the recorded tip is wrong.
        forged["hmac"] = row_hmac(NEW, canonical_bytes(forged))
        log.write_bytes(raw[0] + raw[1] + canonical_json(forged) + b"\n")
        result = verify_log(log, Keyring.of(NEW, OLD))
        assert result.error is not None
        assert result.error.startswith("line 3 (seq 3): key rotation row does not record")

    def test_a_key_outside_the_ring_cannot_extend_the_chain(self, log: Path) -> None:
        with pytest.raises(AuditChainError):
            append_row(log, b"x" * 32, row(9))


class TestCommands:
    def invoke(self, *args: str | Path) -> Any:
        return CliRunner().invoke(app, [str(a) for a in args])

    def test_keygen_then_rotate(self, tmp_path: Path) -> None:
        path = tmp_path / "k" / "audit.key"
        made = self.invoke("audit", "keygen", "--key-file", path)
        assert made.exit_code == 0, made.stdout
        assert "(mode 0600)" in made.stdout
        again = self.invoke("audit", "keygen", "--key-file", path)
        assert again.exit_code == 1 and "exists" in again.stderr
        assert self.invoke("audit", "keygen", "--key-file", path, "--if-missing").exit_code == 0
        rotated = self.invoke("audit", "rotate", "--key-file", path)
        assert rotated.exit_code == 0 and rotated.stdout.startswith("epoch 2: key ")
        assert load_keyring(path).epoch == 2

    def test_keygen_if_missing_refuses_a_bad_existing_key(self, tmp_path: Path) -> None:
        path = tmp_path / "audit.key"
        path.write_bytes(b"k" * 40)
        path.chmod(0o644)
        result = self.invoke("audit", "keygen", "--key-file", path, "--if-missing")
        assert result.exit_code == 1 and "chmod 600" in result.stderr

    def test_verify_all_prints_a_table_and_fails_on_any_bad_log(self, tmp_path: Path) -> None:
        key = tmp_path / "audit.key"
        key.write_bytes(OLD)
        logs = tmp_path / "audit"
        logs.mkdir()
        for name in ("WORKER-1", "WORKER-2"):
            append_row(logs / f"{name}.jsonl", OLD, row(1))
            append_row(logs / f"{name}.jsonl", OLD, row(2))
        ok = self.invoke("audit", "verify-all", logs, "--key-file", key)
        assert ok.exit_code == 0, ok.stdout
        assert "2 logs: 2 verified, 0 failed" in ok.stdout
        broken = logs / "WORKER-2.jsonl"
        broken.write_bytes(broken.read_bytes().replace(b'"f2"', b'"f3"'))
        bad = self.invoke("audit", "verify-all", logs, "--key-file", key, "--json")
        assert bad.exit_code == 1
        report = json.loads(bad.stdout)
        assert (report["count"], report["verified"], report["failed"]) == (2, 1, 1)
        failed = [log for log in report["logs"] if not log["verified"]]
        assert failed[0]["subject_id"] == "WORKER-2"
        assert failed[0]["error"].startswith("line 2 (seq 2): hmac mismatch")

    def test_verify_all_bad_input_exits_2(self, tmp_path: Path) -> None:
        key = tmp_path / "audit.key"
        key.write_bytes(b"k" * 31)
        result = self.invoke("audit", "verify-all", tmp_path, "--key-file", key)
        assert result.exit_code == 2 and "too short" in result.stderr
        key.write_bytes(OLD)
        missing = self.invoke("audit", "verify-all", tmp_path / "nope", "--key-file", key)
        assert missing.exit_code == 2 and "not a directory" in missing.stderr
