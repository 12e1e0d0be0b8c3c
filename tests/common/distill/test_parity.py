"""The materializer parity probe (scripts/parity/materializer_parity.sh, `lakehouse probe
materializer`) against the checked-in golden evidence, and what makes it fail."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from lakehouse_common.cli import app
from tests.support.paths import repo_root


def test_materializer_parity_script_passes() -> None:
    root = repo_root()
    run = subprocess.run(
        ["bash", str(root / "scripts/parity/materializer_parity.sh")],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    passed, total = last.split()[1].split("/")
    assert passed == total and int(total) >= 20


EXPECTED_EVIDENCE = repo_root() / "tests/fixtures/distill/expected/evidence"


def _probe(*args: str) -> Result:
    return CliRunner().invoke(app, ["probe", "materializer", *args])


def test_other_runtime_with_the_same_evidence_passes_phase_3() -> None:
    result = _probe("--other", str(EXPECTED_EVIDENCE))
    assert result.exit_code == 0, result.output
    assert f"phase 3: another runtime's evidence ({EXPECTED_EVIDENCE})" in result.output
    assert "  PASS  other: " in result.output
    assert "FAIL" not in result.output


def test_other_runtime_with_a_different_file_fails(tmp_path: Path) -> None:
    other = tmp_path / "evidence"
    shutil.copytree(EXPECTED_EVIDENCE, other)
    victim = sorted(other.glob("*/*.jsonl"))[0]
    lines = victim.read_bytes().splitlines(keepends=True)
    victim.write_bytes(b"".join(lines[1:]))  # one row fewer
    name = victim.relative_to(other).as_posix()
    result = _probe("--other", str(other))
    assert result.exit_code == 1
    assert f"  FAIL  other: {name} byte-identical" in result.output
    passed, total = result.output.rstrip().splitlines()[-1].split()[1].split("/")
    assert int(passed) == int(total) - 1


def test_expected_receipt_mismatch_fails(tmp_path: Path) -> None:
    expected = tmp_path / "expected"
    shutil.copytree(EXPECTED_EVIDENCE.parent, expected)
    receipt_path = expected / "materialize_receipt.json"
    receipt = json.loads(receipt_path.read_text())
    receipt["records_in"] += 1
    receipt_path.write_text(json.dumps(receipt))
    result = _probe("--expected", str(expected))
    assert result.exit_code == 1
    assert "  FAIL  receipt: records_in as expected" in result.output
