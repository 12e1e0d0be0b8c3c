#!/usr/bin/env bash
# Materializer parity probe (SPEC §7, §9; issue 8). Every check is an assertion:
#
#   1. golden: the materializer (`lakehouse distill materialize`'s library) runs over a copy of the fixture knowledge base
#      (tests/fixtures/distill/_kb: every stream, malformed lines, a torn tail) and each evidence
#      file is compared byte for byte with tests/fixtures/distill/expected/evidence — ignoring only
#      `provenance.recorded_at`, as the original system's probe did — plus the receipt's counts
#      (records in/out, skips by reason, rows by kind) with the expected receipt;
#   2. idempotence: a second run writes nothing and every file keeps its bytes;
#   3. with --other DIR (the `evidence/` tree another runtime produced from the same _kb): the
#      same comparison against it.
#
# Usage: scripts/parity/materializer_parity.sh [--kb DIR] [--expected DIR] [--other DIR]
# Ends with `materializer_parity: N/N assertions passed`; exit 0 when all pass, else 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "no $PY: run 'make install' first" >&2
  exit 2
fi
cd "$ROOT"
exec "$PY" - "$@" <<'PYTHON'
import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.materialize import materialize as _materialize

parser = argparse.ArgumentParser(prog="materializer_parity.sh")
parser.add_argument("--kb", default="tests/fixtures/distill/_kb", help="the _kb to materialize")
parser.add_argument("--expected", default="tests/fixtures/distill/expected")
parser.add_argument("--other", default=None, help="another runtime's evidence/ directory")
args = parser.parse_args()

RECORDED_AT = re.compile(rb'("provenance":\{.*"recorded_at":)"[^"]*"')
RECEIPT_KEYS = ("records_in", "records_out", "skips", "by_kind", "skipped")
results: list[tuple[bool, str]] = []


def check(ok: bool, what: str) -> None:
    results.append((ok, what))
    print(f"  {'PASS' if ok else 'FAIL'}  {what}")


def masked(path: Path) -> list[bytes]:
    return [RECORDED_AT.sub(rb'\1""', line) for line in path.read_bytes().splitlines()]


def tree(directory: Path) -> dict[str, Path]:
    return {p.relative_to(directory).as_posix(): p for p in sorted(directory.glob("*/*.jsonl"))}


def compare(produced: Path, reference: Path, label: str) -> None:
    ours, theirs = tree(produced), tree(reference)
    check(sorted(ours) == sorted(theirs), f"{label}: the same {len(theirs)} day/stream files")
    for name in sorted(set(ours) & set(theirs)):
        a, b = masked(ours[name]), masked(theirs[name])
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        where = "" if a == b else f" (line {first if first is not None else min(len(a), len(b))})"
        check(a == b, f"{label}: {name} byte-identical, {len(b)} rows{where}")


def digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def materialize(data_dir: Path) -> dict:
    """This checkout's materializer, in process (what `lakehouse distill materialize` runs)."""
    return _materialize(DistillLayout(data_dir), DistillSettings()).receipt


with tempfile.TemporaryDirectory(prefix="materializer-parity-") as tmp:
    data_dir = Path(tmp)
    shutil.copytree(args.kb, data_dir / "_kb")
    evidence = data_dir / "distill" / "evidence"
    expected = Path(args.expected)

    print(f"phase 1: golden evidence ({expected})")
    receipt = materialize(data_dir)
    compare(evidence, expected / "evidence", "golden")
    golden_receipt = json.loads((expected / "materialize_receipt.json").read_text())
    for key in RECEIPT_KEYS:
        check(receipt.get(key) == golden_receipt.get(key), f"receipt: {key} as expected")

    print("phase 2: idempotence")
    before = digests(data_dir / "distill")
    again = materialize(data_dir)
    check(digests(data_dir / "distill") == before, "a second run leaves every file byte-identical")
    check(again == receipt, "a second run answers the same receipt")

    if args.other:
        print(f"phase 3: another runtime's evidence ({args.other})")
        compare(evidence, Path(args.other), "other")

passed = sum(ok for ok, _ in results)
print(f"materializer_parity: {passed}/{len(results)} assertions passed")
sys.exit(0 if passed == len(results) else 1)
PYTHON
