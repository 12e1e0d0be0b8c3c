"""The materializer parity probe (SPEC §7, §9; issue 8). Every check is an assertion:

1. golden: this checkout's materializer (what ``lakehouse distill materialize`` runs) runs over a
   copy of the fixture knowledge base (``tests/fixtures/distill/_kb``: every stream, malformed
   lines, a torn tail) and each evidence file is compared byte for byte with
   ``tests/fixtures/distill/expected/evidence`` — ignoring only ``provenance.recorded_at``, as
   the original system's probe did — plus the receipt's counts (records in/out, skips by reason,
   rows by kind) with the expected receipt;
2. idempotence: a second run writes nothing and every file keeps its bytes;
3. with ``other`` (the ``evidence/`` tree another runtime produced from the same ``_kb``): the
   same comparison against it.

No stack is needed: the materializer runs in process over a temporary data directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from lakehouse_common.config import REPO_ROOT, DistillSettings
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.materialize import materialize
from lakehouse_common.ops.probes.tally import Tally

__all__ = ["DEFAULT_EXPECTED", "DEFAULT_KB", "materializer_parity"]

DEFAULT_KB: Final = Path("tests/fixtures/distill/_kb")
DEFAULT_EXPECTED: Final = Path("tests/fixtures/distill/expected")

_RECORDED_AT: Final = re.compile(rb'("provenance":\{.*"recorded_at":)"[^"]*"')
_RECEIPT_KEYS: Final = ("records_in", "records_out", "skips", "by_kind", "skipped")


def _from_repo(path: Path) -> Path:
    """A relative path names a file of this checkout (as when the script ran from its root)."""
    return path if path.is_absolute() else REPO_ROOT / path


def _masked(path: Path) -> list[bytes]:
    return [_RECORDED_AT.sub(rb'\1""', line) for line in path.read_bytes().splitlines()]


def _tree(directory: Path) -> dict[str, Path]:
    return {p.relative_to(directory).as_posix(): p for p in sorted(directory.glob("*/*.jsonl"))}


def _compare(tally: Tally, produced: Path, reference: Path, label: str) -> None:
    ours, theirs = _tree(produced), _tree(reference)
    tally.check(sorted(ours) == sorted(theirs), f"{label}: the same {len(theirs)} day/stream files")
    for name in sorted(set(ours) & set(theirs)):
        a, b = _masked(ours[name]), _masked(theirs[name])
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        where = "" if a == b else f" (line {first if first is not None else min(len(a), len(b))})"
        tally.check(a == b, f"{label}: {name} byte-identical, {len(b)} rows{where}")


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _materialize(data_dir: Path) -> dict[str, Any]:
    return materialize(DistillLayout(data_dir), DistillSettings()).receipt


def materializer_parity(
    tally: Tally,
    *,
    kb: Path = DEFAULT_KB,
    expected: Path = DEFAULT_EXPECTED,
    other: Path | None = None,
) -> None:
    """The materializer over `kb` against `expected` (and `other`, another runtime's evidence);
    relative paths name files of this checkout."""
    with tempfile.TemporaryDirectory(prefix="materializer-parity-") as tmp:
        data_dir = Path(tmp)
        shutil.copytree(_from_repo(kb), data_dir / "_kb")
        evidence = data_dir / "distill" / "evidence"

        tally.echo(f"phase 1: golden evidence ({expected})")
        receipt = _materialize(data_dir)
        _compare(tally, evidence, _from_repo(expected) / "evidence", "golden")
        golden = json.loads((_from_repo(expected) / "materialize_receipt.json").read_text())
        for key in _RECEIPT_KEYS:
            tally.check(receipt.get(key) == golden.get(key), f"receipt: {key} as expected")

        tally.echo("phase 2: idempotence")
        before = _digests(data_dir / "distill")
        again = _materialize(data_dir)
        tally.check(
            _digests(data_dir / "distill") == before,
            "a second run leaves every file byte-identical",
        )
        tally.check(again == receipt, "a second run answers the same receipt")

        if other is not None:
            tally.echo(f"phase 3: another runtime's evidence ({other})")
            _compare(tally, evidence, _from_repo(other), "other")
