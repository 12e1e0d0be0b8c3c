"""Where distillation reads and writes (SPEC §7): everything below `<data_dir>`.

Input is observerd's `<data_dir>/_kb/*.jsonl`, read only (observerd stays the one writer of
`_kb/`). Output lives below `<data_dir>/distill/`::

    evidence/YYYY-MM-DD/<stream>.jsonl   materialize: one evidence record per observation
    scores/YYYY-MM-DD/<stream>.jsonl     score: one tier per evidence record, same order
    exports/{sft,rag,preference_pairs,quarantine}.jsonl
    receipts/<stage>.json                the latest receipt of each stage
    runs/<run_id>/summary.json           one per distinct `lakehouse distill run`
    runs/LATEST                          the run id of the newest summary
    reports/audit_full.{md,json}         audit-full's report
    audit_baselines.jsonl                audit-full --append-baseline
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lakehouse_common.contracts.observe import KB_DIR

__all__ = ["DISTILL_DIR", "STAGES", "DistillLayout"]

DISTILL_DIR: Final = "distill"
# The stages of `lakehouse distill run`, in order; each writes `receipts/<stage>.json`.
STAGES: Final = ("materialize", "score", "export")


@dataclass(frozen=True)
class DistillLayout:
    data_dir: Path

    @property
    def kb(self) -> Path:
        return self.data_dir / KB_DIR

    @property
    def root(self) -> Path:
        return self.data_dir / DISTILL_DIR

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def scores(self) -> Path:
        return self.root / "scores"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def receipts(self) -> Path:
        return self.root / "receipts"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def baselines(self) -> Path:
        return self.root / "audit_baselines.jsonl"

    @property
    def latest_run(self) -> Path:
        return self.runs / "LATEST"

    def receipt(self, stage: str) -> Path:
        return self.receipts / f"{stage}.json"

    def summary(self, run_id: str) -> Path:
        return self.runs / run_id / "summary.json"

    def relative(self, path: Path) -> str:
        """`path` relative to the data dir, `/`-separated (how receipts and provenance name
        files, so they do not depend on where the data dir is mounted)."""
        return path.relative_to(self.data_dir).as_posix()

    def sources(self) -> list[Path]:
        """The `_kb` stream files, by name."""
        if not self.kb.is_dir():
            return []
        return sorted(p for p in self.kb.glob("*.jsonl") if p.is_file())

    def partitions(self, tree: Path) -> list[Path]:
        """The `YYYY-MM-DD/<stream>.jsonl` files below `tree`, by day then stream."""
        if not tree.is_dir():
            return []
        return sorted(p for p in tree.glob("*/*.jsonl") if p.is_file())
