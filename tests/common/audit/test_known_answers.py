"""The golden known answers of tests/fixtures/audit_known_answer/ (SPEC §8, issue 7), and the
parity probe's known-answer phase that reads them."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lakehouse_common.audit import (
    Keyring,
    canonical_bytes,
    canonical_bytes_from_raw,
    row_hmac,
    verify_log,
)
from tests.support.paths import repo_root

FIXTURES = repo_root() / "tests" / "fixtures" / "audit_known_answer"
ROW_CASES = sorted(p for p in FIXTURES.glob("*.json") if "row" in json.loads(p.read_text()))


def load(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return out


@pytest.mark.parametrize("path", ROW_CASES, ids=lambda p: p.stem)
class TestRowKnownAnswers:
    def test_canonical_bytes(self, path: Path) -> None:
        case = load(path)
        canonical = canonical_bytes(case["row"])
        assert canonical == case["canonical"].encode("utf-8")
        assert len(canonical) == case["canonical_len"]

    def test_hmac_is_stdlib_hmac_of_the_fixture_bytes(self, path: Path) -> None:
        # Independent of our canonicaliser: the checked-in bytes, HMAC'd by the stdlib.
        case = load(path)
        key = bytes.fromhex(case["key_hex"])
        expected = hmac.new(key, case["canonical"].encode("utf-8"), hashlib.sha256).hexdigest()
        assert case["hmac"] == expected == row_hmac(key, canonical_bytes(case["row"]))

    def test_stored_line_canonicalises_to_the_same_bytes(self, path: Path) -> None:
        case = load(path)
        stored = case["stored_line"].encode("utf-8")
        assert canonical_bytes_from_raw(stored) == case["canonical"].encode("utf-8")
        assert json.loads(stored)["hmac"] == case["hmac"]


def test_chain_across_epochs(tmp_path: Path) -> None:
    case = load(FIXTURES / "04_chain_across_epochs.json")
    log = tmp_path / "log.jsonl"
    log.write_bytes("".join(line + "\n" for line in case["lines"]).encode("utf-8"))
    keys = [bytes.fromhex(k) for k in case["keys_hex"]]
    assert verify_log(log, Keyring.of(*keys)).as_dict() == case["verify"]
    assert verify_log(log, keys[-1]).as_dict() == case["verify_epoch_1_key_only"]
    assert case["verify"]["verified"] is True


def test_parity_probe_known_answer_phase() -> None:
    script = repo_root() / "scripts" / "parity" / "subject_audit_parity.sh"
    result = subprocess.run(
        ["bash", str(script), "--skip-live"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert result.stdout.rstrip().endswith("subject_audit_parity: 12/12 assertions passed")
