"""Torn-tail repair and eager rotation rows in the chain (SPEC §8, issue 18)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lakehouse_common.audit import (
    REPAIR_ACTION,
    ROTATION_ACTION,
    AuditChainError,
    AuditRowError,
    Keyring,
    append_row,
    build_row,
    start_epoch,
    verify_log,
)
from lakehouse_common.audit.repair import is_torn, repair_torn_tail

KEY = b"k" * 40
NEW = b"n" * 40


def row(n: int) -> dict[str, Any]:
    return build_row("W-1", daemon="queryd", purpose="query", action="read", fields=[f"f{n}"])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "W-1.jsonl"
    for i in range(3):
        append_row(path, KEY, row(i))
    return path


class TestRepair:
    def test_torn_tail_is_cut_and_a_repair_row_records_it(self, log: Path) -> None:
        intact = log.read_bytes()
        torn = b'{"accessor":{"daemon":"que'
        log.write_bytes(intact + torn)
        assert is_torn(log)
        with pytest.raises(AuditChainError):  # before: every append refused
            append_row(log, KEY, row(9))
        repair = repair_torn_tail(log, KEY, "W-1")
        assert repair is not None
        assert repair.bytes_removed == len(torn)
        assert repair.sha256 == hashlib.sha256(torn).hexdigest()
        assert log.read_bytes().startswith(intact)
        stored = json.loads(log.read_bytes().splitlines()[-1])
        assert stored["action"] == REPAIR_ACTION and stored["seq"] == 4
        assert stored["fields"]["bytes_removed"] == len(torn)
        result = verify_log(log, KEY)
        assert result.verified and result.count == 4
        assert result.repairs == (
            {
                "seq": 4,
                "ts": stored["ts"],
                "bytes_removed": len(torn),
                "sha256": hashlib.sha256(torn).hexdigest(),
            },
        )
        append_row(log, KEY, row(9))  # appends work again
        assert verify_log(log, KEY).count == 5

    def test_intact_log_is_left_alone(self, log: Path) -> None:
        before = log.read_bytes()
        assert not is_torn(log)
        assert repair_torn_tail(log, KEY, "W-1") is None
        assert log.read_bytes() == before

    def test_a_log_that_is_one_torn_line(self, tmp_path: Path) -> None:
        path = tmp_path / "W-1.jsonl"
        path.write_bytes(b'{"acc')
        repair = repair_torn_tail(path, KEY, "W-1")
        assert repair is not None and repair.row["seq"] == 1
        assert verify_log(path, KEY).verified

    def test_bad_row_before_the_tear_is_not_repaired(self, log: Path) -> None:
        raw = log.read_bytes().replace(b'"f2"', b'"f7"') + b'{"x'
        log.write_bytes(raw)
        with pytest.raises(AuditChainError, match="not repaired"):
            repair_torn_tail(log, KEY, "W-1")
        assert log.read_bytes() == raw  # evidence kept

    def test_callers_cannot_write_repair_rows(self, log: Path) -> None:
        forged = build_row(
            "W-1", daemon="x", purpose="repair", action=REPAIR_ACTION, fields={"bytes_removed": 1}
        )
        with pytest.raises(AuditRowError):
            append_row(log, KEY, forged)


class TestEagerRotation:
    def test_start_epoch_writes_the_rotation_row_now(self, log: Path) -> None:
        keyring = Keyring(NEW, 2, {1: KEY})
        tip = verify_log(log, KEY).tip
        stored = start_epoch(log, keyring, "W-1")
        assert stored is not None and stored["action"] == ROTATION_ACTION
        assert stored["fields"]["previous_tip"] == tip and stored["seq"] == 4
        assert start_epoch(log, keyring, "W-1") is None  # already in the new epoch
        result = verify_log(log, keyring)
        assert result.verified and result.epochs == 2

    def test_start_epoch_on_a_missing_or_empty_log_writes_nothing(self, tmp_path: Path) -> None:
        keyring = Keyring(NEW, 2, {1: KEY})
        assert start_epoch(tmp_path / "none.jsonl", keyring, "W-1") is None
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        assert start_epoch(empty, keyring, "W-1") is None
        assert empty.read_bytes() == b""

    def test_retired_key_row_after_retirement_is_refused(self, log: Path) -> None:
        from lakehouse_common.audit.keys import key_id

        result = verify_log(log, KEY, retired_at={key_id(KEY): "2020-01-01T00:00:00.5Z"})
        assert not result.verified and result.count == 0
        assert "retired at 2020-01-01T00:00:00.5Z" in str(result.error)
        later = verify_log(log, KEY, retired_at={key_id(KEY): "2999-01-01T00:00:00Z"})
        assert later.verified
