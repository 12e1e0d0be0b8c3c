"""`lakehouse distill run`: every stage in order, then the run summary (SPEC §7).

The summary (`runs/<run_id>/summary.json`)::

    {"schema_version": 1, "run_id": "<16 hex>", "run_hash": "<64 hex>",
     "git_commit": "<40 hex>", "stages": ["materialize", "score", "export"],
     "receipts": {"materialize": {…}, "score": {…}, "export": {…}}}

`run_hash` is sha256 over the canonical JSON (SPEC §8) of the receipts, in stage order, and
`run_id` its first 16 hex: the same input gives the same receipts, so the same run id and a
byte-identical summary, and a re-run writes nothing new. `git_commit` is the checkout's HEAD
(`LAKEHOUSE_GIT_COMMIT` overrides it, for installs without a `.git`; forty zeros when neither is
known). `runs/LATEST` names the newest run for audit-full.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from lakehouse_common.config import REPO_ROOT, DistillSettings
from lakehouse_common.distill.audit_full import AuditReport, audit_full, write_report
from lakehouse_common.distill.export import export
from lakehouse_common.distill.jsonl import ProgressHook, write_if_changed
from lakehouse_common.distill.layout import STAGES, DistillLayout
from lakehouse_common.distill.materialize import materialize, total_input_bytes
from lakehouse_common.distill.score import score
from lakehouse_common.distill.stage import (
    RECEIPT_SCHEMA_VERSION,
    DistillError,
    StageResult,
    dump_json,
    run_hash,
)

__all__ = [
    "GIT_COMMIT_ENV",
    "RunResult",
    "git_commit",
    "latest_summary",
    "run_hash",
    "run_pipeline",
    "write_summary",
]

GIT_COMMIT_ENV: Final = "LAKEHOUSE_GIT_COMMIT"
_HEX40: Final = re.compile(r"[0-9a-f]{40}")

# Called before each stage with its name and how many input bytes it will read; answers the
# hook the stage reports its progress to.
StageHook = Callable[[str, int], ProgressHook | None]


def git_commit(repo: Path = REPO_ROOT) -> str:
    """HEAD of the checkout (40 hex), `$LAKEHOUSE_GIT_COMMIT`, or forty zeros."""
    override = os.environ.get(GIT_COMMIT_ENV, "").strip().lower()
    if _HEX40.fullmatch(override):
        return override
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "0" * 40
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and _HEX40.fullmatch(commit) else "0" * 40


def write_summary(
    layout: DistillLayout, receipts: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """Write the run summary (and `runs/LATEST`) for these receipts; answers it and the files
    that changed."""
    missing = [stage for stage in STAGES if stage not in receipts]
    if missing:
        raise DistillError(f"no receipt for {', '.join(missing)}")
    digest = run_hash([receipts[stage] for stage in STAGES])
    summary = {
        "schema_version": RECEIPT_SCHEMA_VERSION,
        "run_id": digest[:16],
        "run_hash": digest,
        "git_commit": git_commit(),
        "stages": list(STAGES),
        "receipts": {stage: receipts[stage] for stage in STAGES},
    }
    written = []
    path = layout.summary(digest[:16])
    if write_if_changed(path, dump_json(summary)):
        written.append(layout.relative(path))
    if write_if_changed(layout.latest_run, f"{digest[:16]}\n".encode()):
        written.append(layout.relative(layout.latest_run))
    return summary, written


def latest_summary(layout: DistillLayout) -> dict[str, Any] | None:
    try:
        run_id = layout.latest_run.read_text().strip()
        summary: dict[str, Any] = orjson.loads(layout.summary(run_id).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError, ValueError):
        return None
    return summary


@dataclass
class RunResult:
    stages: list[StageResult]
    summary: dict[str, Any]
    audit: AuditReport
    # Every file the run changed or removed; empty when the input did not change.
    written: list[str] = field(default_factory=list)


def _stage_bytes(layout: DistillLayout, tree: Path) -> int:
    return sum(p.stat().st_size for p in layout.partitions(tree))


def run_pipeline(
    layout: DistillLayout,
    settings: DistillSettings,
    *,
    heldout: Path | None = None,
    roster: Path | None = None,
    on_stage: StageHook | None = None,
) -> RunResult:
    """materialize → score → export → summary → audit-full (report written, no baseline)."""

    def hook(stage: str, total: int) -> ProgressHook | None:
        return on_stage(stage, total) if on_stage is not None else None

    results = [
        materialize(layout, settings, progress=hook("materialize", total_input_bytes(layout)))
    ]
    evidence_bytes = _stage_bytes(layout, layout.evidence)
    results.append(score(layout, settings, progress=hook("score", evidence_bytes)))
    results.append(
        export(
            layout,
            settings,
            heldout=heldout,
            roster=roster,
            progress=hook("export", evidence_bytes),
        )
    )
    summary, summary_files = write_summary(layout, {r.stage: r.receipt for r in results})
    report = audit_full(layout, settings, heldout=heldout, roster=roster)
    changed = [path for r in results for path in (*r.written, *r.removed)]
    changed += summary_files + write_report(layout, report)
    return RunResult(results, summary, report, changed)
