"""audit-full: phases 0–7 over distillation's outputs, each a named check (SPEC §7).

0. files present — the receipts, the run summary, every output a receipt lists (`p0_files`);
1. schema — evidence, score and export rows have their fields, in order, with their types;
   `line_offset` an integer ≥ 0; `sig_hash` 64 lowercase hex (`p1_rows_checked`,
   `p1_schema_errors`);
2. evidence tally — rows and file digests equal the materialize receipt; in = out + skips
   (`p2_records_in`, `p2_evidence_rows`, `p2_evidence_skips`);
3. score distribution — one score per evidence row; tiers equal the score receipt
   (`p3_accepted`, `p3_partial`, `p3_rejected`, `p3_human`);
4. exports and firewall — counts equal the export receipt; no exported row trips the firewall;
   every quarantined row has a known reason; info: a held-out set and a roster were loaded
   (`p4_sft_rows`, `p4_rag_rows`, `p4_pref_pairs`, `p4_total_quarantined`);
5. run summary — `schema_version` 1, a 64-hex `run_hash` that recomputes from the receipts, a
   40-hex `git_commit`, every stage's receipt, equal to the latest on disk (`p5_stages`);
6. acceptance invariants — SFT rows accepted, RAG rows accepted or partial, pairs an accepted
   against a rejected record of one task, day partitions match `recorded_at`, line offsets
   increase within a source (`p6_violations`);
7. replay log — the last 50 `_kb/replay_runs.jsonl` rows are `replay_run.v1` observations
   (required once there are any) (`p7_replay_rows`, `p7_replay_checked`,
   `p7_verdict_changed`).

Every check is required unless marked info; a failed info check is a warning.

The report is deterministic (no clock): `reports/audit_full.{json,md}`. `--append-baseline`
adds `{recorded_at, git_commit, run_id, metrics}` to `audit_baselines.jsonl`, the log
`lakehouse distill drift` compares.
"""

from __future__ import annotations

import os
import re
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import ValidationError

from lakehouse_common.clock import now_rfc3339_nanos
from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.events import REPLAY_SCHEMA, REPLAY_STREAM, ReplayRun
from lakehouse_common.distill.export import EXPORTS, load_firewall
from lakehouse_common.distill.firewall import REASONS, Firewall
from lakehouse_common.distill.jsonl import read_lines, sha256_file, write_if_changed
from lakehouse_common.distill.layout import STAGES, DistillLayout
from lakehouse_common.distill.records import EVIDENCE_SCHEMA, SIG_HASH, TIERS, canonical
from lakehouse_common.distill.stage import RECEIPT_SCHEMA_VERSION, DistillError, dump_json, run_hash
from lakehouse_common.durable import fsync_dir

__all__ = [
    "REPLAY_WINDOW",
    "AuditReport",
    "Check",
    "append_baseline",
    "audit_full",
    "format_markdown",
    "write_report",
]

REPLAY_WINDOW: Final = 50
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_HEX40: Final = re.compile(r"[0-9a-f]{40}")
_EVIDENCE_FIELDS: Final = (
    "schema",
    "kind",
    "task",
    "trace_id",
    "daemon",
    "input",
    "output",
    "outcome",
    "tokens",
    "metadata",
    "provenance",
)
_MAX_DETAILS: Final = 5


@dataclass
class Check:
    phase: int
    name: str
    required: bool
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "name": self.name,
            "required": self.required,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass
class AuditReport:
    run_id: str
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)

    @property
    def required_failed(self) -> list[Check]:
        return [c for c in self.checks if c.required and not c.passed]

    @property
    def passed(self) -> bool:
        return not self.required_failed

    def check(
        self, phase: int, name: str, passed: bool, detail: str = "", *, required: bool = True
    ) -> None:
        self.checks.append(Check(phase, name, required, passed, detail))

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RECEIPT_SCHEMA_VERSION,
            "run_id": self.run_id,
            "passed": self.passed,
            "required_failed": len(self.required_failed),
            "checks": [c.as_dict() for c in self.checks],
            "metrics": dict(sorted(self.metrics.items())),
        }


class _Problems:
    """Counts problems and keeps the first few, for a check's detail."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.first) < _MAX_DETAILS:
            self.first.append(what)

    def detail(self, ok: str) -> str:
        if not self.count:
            return ok
        more = f" (+{self.count - len(self.first)} more)" if self.count > len(self.first) else ""
        return "; ".join(self.first) + more


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed row or None) of a JSONL file."""
    for number, _, raw, complete in read_lines(path):
        try:
            yield number, orjson.loads(raw) if complete else None
        except orjson.JSONDecodeError:
            yield number, None


def _receipts(layout: DistillLayout) -> dict[str, dict[str, Any]]:
    out = {}
    for stage in STAGES:
        try:
            out[stage] = orjson.loads(layout.receipt(stage).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            continue
    return out


def _latest_run_id(layout: DistillLayout) -> str:
    try:
        return layout.latest_run.read_text().strip()
    except FileNotFoundError:
        return ""


def _evidence_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "not a JSON object"
    if tuple(row) != _EVIDENCE_FIELDS:
        return "fields missing or out of order"
    if row["schema"] != EVIDENCE_SCHEMA or not isinstance(row["kind"], str):
        return "bad schema or kind"
    task = row["task"]
    if not isinstance(task, dict) or not _HEX16.fullmatch(str(task.get("id"))):
        return "task.id is not 16 hex"
    tokens = row["tokens"]
    if not isinstance(tokens, dict) or not all(
        isinstance(tokens.get(k), int) and tokens[k] >= 0 for k in ("prompt", "completion")
    ):
        return "bad tokens"
    p = row["provenance"]
    if not isinstance(p, dict) or tuple(p) != ("source", "line_offset", "recorded_at", "sig_hash"):
        return "provenance fields missing or out of order"
    offset = p["line_offset"]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return "provenance.line_offset is not an integer >= 0"
    if not isinstance(p["sig_hash"], str) or not SIG_HASH.fullmatch(p["sig_hash"]):
        return "provenance.sig_hash is not 64 lowercase hex"
    if not isinstance(p["recorded_at"], str) or not isinstance(p["source"], str):
        return "provenance.source/recorded_at are not strings"
    return None


def _phase_0(layout: DistillLayout, report: AuditReport, receipts: dict[str, Any]) -> None:
    missing = [stage for stage in STAGES if stage not in receipts]
    report.check(
        0,
        "receipts_present",
        not missing,
        f"missing: {', '.join(missing)}" if missing else "all stages",
    )
    run_id = report.run_id
    has_summary = bool(run_id) and layout.summary(run_id).is_file()
    report.check(0, "summary_present", has_summary, f"runs/{run_id or '?'}/summary.json")
    problems = _Problems()
    files = 0
    for receipt in receipts.values():
        for output in receipt.get("outputs", []):
            files += 1
            if not (layout.data_dir / output["path"]).is_file():
                problems.add(f"{output['path']} missing")
    report.metrics["p0_files"] = files
    report.check(0, "outputs_present", not problems.count, problems.detail(f"{files} files"))


def _phase_1_2(layout: DistillLayout, report: AuditReport, receipts: dict[str, Any]) -> _Problems:
    """Phases 1 and 2 (one pass over the evidence); answers the partition/offset problems phase
    6 reports."""
    problems = _Problems()
    checked = rows = 0
    ordering = _Problems()
    for path in layout.partitions(layout.evidence):
        day = path.parent.name
        last: tuple[str, int] | None = None
        for number, row in _rows(path):
            checked += 1
            rows += 1
            why = _evidence_problem(row)
            if why is not None:
                problems.add(f"{layout.relative(path)}:{number}: {why}")
                continue
            p = row["provenance"]
            if not p["recorded_at"].startswith(day):
                ordering.add(f"{layout.relative(path)}:{number}: recorded_at not on {day}")
            if last is not None and last[0] == p["source"] and p["line_offset"] <= last[1]:
                ordering.add(f"{layout.relative(path)}:{number}: line_offset does not increase")
            last = (p["source"], p["line_offset"])
    for path in layout.partitions(layout.scores):
        for number, row in _rows(path):
            checked += 1
            if (
                not isinstance(row, dict)
                or row.get("tier") not in TIERS
                or not SIG_HASH.fullmatch(str(row.get("sig_hash")))
            ):
                problems.add(f"{layout.relative(path)}:{number}: not a score row")
    for name in (*EXPORTS.values(), "quarantine.jsonl"):
        path = layout.exports / name
        if not path.is_file():
            continue
        for number, row in _rows(path):
            checked += 1
            inner = row.get("row") if isinstance(row, dict) and name == "quarantine.jsonl" else row
            if not isinstance(inner, dict) or not isinstance(inner.get("schema"), str):
                problems.add(f"{layout.relative(path)}:{number}: not an export row")
    report.metrics["p1_rows_checked"] = checked
    report.metrics["p1_schema_errors"] = problems.count
    report.check(1, "rows_match_schemas", not problems.count, problems.detail(f"{checked} rows"))

    materialized = receipts.get("materialize", {})
    report.metrics["p2_records_in"] = int(materialized.get("records_in", 0))
    report.metrics["p2_evidence_rows"] = rows
    report.metrics["p2_evidence_skips"] = sum(materialized.get("skips", {}).values())
    report.check(
        2,
        "evidence_rows_match_receipt",
        rows == materialized.get("records_out"),
        f"{rows} rows on disk, receipt says {materialized.get('records_out')}",
    )
    digests = _Problems()
    for output in materialized.get("outputs", []):
        path = layout.data_dir / output["path"]
        if not path.is_file() or sha256_file(path) != output["sha256"]:
            digests.add(f"{output['path']} differs from its receipt")
    report.check(
        2, "evidence_files_match_receipt", not digests.count, digests.detail("sha256 of every file")
    )
    balanced = materialized.get("records_in") == rows + report.metrics["p2_evidence_skips"]
    report.check(
        2, "records_in_equals_out_plus_skips", balanced, f"{materialized.get('records_in')} in"
    )
    return ordering


def _phase_3(layout: DistillLayout, report: AuditReport, receipts: dict[str, Any]) -> None:
    tiers: Counter[str] = Counter()
    human = rows = 0
    mismatched = _Problems()
    for path in layout.partitions(layout.evidence):
        scores = layout.scores / path.relative_to(layout.evidence)
        evidence_rows = sum(1 for _ in read_lines(path))
        score_rows = 0
        if scores.is_file():
            for _, row in _rows(scores):
                score_rows += 1
                if isinstance(row, dict):
                    tiers[str(row.get("tier"))] += 1
                    human += row.get("human_label") is not None
        rows += score_rows
        if score_rows != evidence_rows:
            mismatched.add(
                f"{layout.relative(scores)}: {score_rows} scores for {evidence_rows} rows"
            )
    for tier in TIERS:
        report.metrics[f"p3_{tier}"] = tiers[tier]
    report.metrics["p3_human"] = human
    report.check(
        3, "one_score_per_evidence_row", not mismatched.count, mismatched.detail(f"{rows} scores")
    )
    expected = receipts.get("score", {}).get("tiers", {})
    same = all(tiers[t] == expected.get(t) for t in TIERS)
    report.check(3, "tiers_match_receipt", same, ", ".join(f"{t} {tiers[t]}" for t in TIERS))


def _phase_4(
    layout: DistillLayout, report: AuditReport, receipts: dict[str, Any], firewall: Firewall | None
) -> None:
    counts: Counter[str] = Counter()
    leaks = _Problems()
    for export_name, file_name in EXPORTS.items():
        path = layout.exports / file_name
        if not path.is_file():
            continue
        for number, row in _rows(path):
            counts[export_name] += 1
            if firewall is None or not isinstance(row, dict):
                continue
            if export_name == "sft":
                messages = row.get("messages") or []
                prompt = next((m["content"] for m in messages if m.get("role") == "user"), "")
                why = firewall.reasons(prompt, [m.get("content") for m in messages])
            elif export_name == "rag":
                why = firewall.reasons(row.get("text"), row.get("answer"))
            else:
                messages = row.get("messages") or []
                why = firewall.reasons(
                    None,
                    [m.get("content") for m in messages] + [row.get("chosen"), row.get("rejected")],
                )
                if row.get("chosen") == row.get("rejected") or (
                    (row.get("chosen_provenance") or {}).get("sig_hash")
                    == (row.get("rejected_provenance") or {}).get("sig_hash")
                ):
                    why.append("self_pair")
            if why:
                leaks.add(f"{file_name}:{number}: {', '.join(why)}")
    quarantined = 0
    unexplained = _Problems()
    path = layout.exports / "quarantine.jsonl"
    if path.is_file():
        for number, row in _rows(path):
            quarantined += 1
            reasons = row.get("reasons") if isinstance(row, dict) else None
            if not reasons or any(r not in REASONS for r in reasons):
                unexplained.add(f"quarantine.jsonl:{number}: no known reason")
    report.metrics["p4_sft_rows"] = counts["sft"]
    report.metrics["p4_rag_rows"] = counts["rag"]
    report.metrics["p4_pref_pairs"] = counts["preference"]
    report.metrics["p4_total_quarantined"] = quarantined
    exported = receipts.get("export", {})
    expected_rows = exported.get("rows", {})
    same = all(
        counts[name] == expected_rows.get(name) for name in EXPORTS
    ) and quarantined == exported.get("total_quarantined")
    report.check(
        4,
        "export_counts_match_receipt",
        same,
        f"sft {counts['sft']}, rag {counts['rag']}, pairs {counts['preference']}, "
        f"quarantined {quarantined}",
    )
    report.check(
        4,
        "firewall_holds",
        firewall is not None and not leaks.count,
        leaks.detail("no exported row trips the firewall")
        if firewall is not None
        else "firewall could not be loaded",
    )
    report.check(
        4,
        "quarantine_reasons_known",
        not unexplained.count,
        unexplained.detail(f"{quarantined} rows"),
    )
    described = exported.get("firewall", {})
    held = (described.get("heldout") or {}).get("prompts", 0)
    report.check(4, "heldout_set_loaded", bool(held), f"{held} held-out prompts", required=False)
    roster = described.get("roster")
    report.check(
        4,
        "roster_check_enabled",
        roster is not None,
        f"{(roster or {}).get('workers', 0)} roster workers",
        required=False,
    )


def _phase_5(layout: DistillLayout, report: AuditReport, receipts: dict[str, Any]) -> None:
    try:
        summary = (
            orjson.loads(layout.summary(report.run_id).read_bytes()) if report.run_id else None
        )
    except (FileNotFoundError, orjson.JSONDecodeError):
        summary = None
    if not isinstance(summary, dict):
        report.check(5, "summary_valid", False, "no readable run summary")
        report.metrics["p5_stages"] = 0
        return
    problems = _Problems()
    if summary.get("schema_version") != 1:
        problems.add("schema_version is not 1")
    digest = summary.get("run_hash")
    if not isinstance(digest, str) or not SIG_HASH.fullmatch(digest):
        problems.add("run_hash is not 64 lowercase hex")
    if not _HEX40.fullmatch(str(summary.get("git_commit"))):
        problems.add("git_commit is not 40 lowercase hex")
    in_summary = summary.get("receipts") or {}
    stages = [s for s in STAGES if isinstance(in_summary.get(s), dict)]
    if len(stages) != len(STAGES):
        problems.add("receipts missing from the summary")
    elif run_hash([in_summary[s] for s in STAGES]) != digest:
        problems.add("run_hash does not recompute from the receipts")
    if summary.get("run_id") != report.run_id or str(digest)[:16] != report.run_id:
        problems.add("run_id does not match run_hash")
    report.metrics["p5_stages"] = len(stages)
    report.check(5, "summary_valid", not problems.count, problems.detail(f"run {report.run_id}"))
    current = all(canonical(in_summary.get(s)) == canonical(receipts.get(s)) for s in STAGES)
    report.check(
        5, "summary_matches_receipts", current, "the summary's receipts are the stages' latest"
    )


def _export_sigs(layout: DistillLayout) -> dict[str, set[str]]:
    sigs: dict[str, set[str]] = {"sft": set(), "rag": set(), "chosen": set(), "rejected": set()}
    for name in ("sft", "rag"):
        path = layout.exports / EXPORTS[name]
        if path.is_file():
            for _, row in _rows(path):
                if isinstance(row, dict):
                    sigs[name].add(str((row.get("provenance") or {}).get("sig_hash")))
    path = layout.exports / EXPORTS["preference"]
    if path.is_file():
        for _, row in _rows(path):
            if isinstance(row, dict):
                sigs["chosen"].add(str((row.get("chosen_provenance") or {}).get("sig_hash")))
                sigs["rejected"].add(str((row.get("rejected_provenance") or {}).get("sig_hash")))
    return sigs


def _phase_6(layout: DistillLayout, report: AuditReport, problems: _Problems) -> None:
    sigs = _export_sigs(layout)
    wanted = set().union(*sigs.values())
    tiers: dict[str, str] = {}
    tasks: dict[str, str] = {}
    for path in layout.partitions(layout.scores):
        for _, row in _rows(path):
            if isinstance(row, dict) and row.get("sig_hash") in wanted:
                tiers[row["sig_hash"]] = str(row.get("tier"))
                tasks[row["sig_hash"]] = str(row.get("task_id"))
    allowed = {
        "sft": ("accepted",),
        "rag": ("accepted", "partial"),
        "chosen": ("accepted",),
        "rejected": ("rejected",),
    }
    for name, names in sigs.items():
        for sig in sorted(names):
            if tiers.get(sig) not in allowed[name]:
                problems.add(f"{name} row {sig[:16]} has tier {tiers.get(sig)}")
    path = layout.exports / EXPORTS["preference"]
    if path.is_file():
        for number, row in _rows(path):
            if not isinstance(row, dict):
                continue
            chosen = (row.get("chosen_provenance") or {}).get("sig_hash")
            rejected = (row.get("rejected_provenance") or {}).get("sig_hash")
            if not (tasks.get(str(chosen)) == tasks.get(str(rejected)) == row.get("task_id")):
                problems.add(
                    f"preference_pairs.jsonl:{number}: chosen and rejected of different tasks"
                )
    report.metrics["p6_violations"] = problems.count
    report.check(
        6,
        "acceptance_invariants",
        not problems.count,
        problems.detail("exports follow the tiers; partitions and offsets in order"),
    )


def _phase_7(layout: DistillLayout, report: AuditReport) -> None:
    path = layout.kb / f"{REPLAY_STREAM}.jsonl"
    window: deque[tuple[int, bytes]] = deque(maxlen=REPLAY_WINDOW)
    total = 0
    if path.is_file():
        for number, _, raw, complete in read_lines(path):
            if complete and raw.strip():
                total += 1
                window.append((number, raw))
    problems = _Problems()
    changed = 0
    for number, raw in window:
        try:
            obs = orjson.loads(raw)
            event = obs["event"]
            if event.get("schema") != REPLAY_SCHEMA:
                raise ValueError(f"schema is not {REPLAY_SCHEMA}")
            run = ReplayRun.model_validate(event)
            changed += run.verdict_changed
        except (
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            AttributeError,
            ValueError,
            ValidationError,
        ) as exc:
            problems.add(f"line {number}: {str(exc).splitlines()[0]}")
    report.metrics["p7_replay_rows"] = total
    report.metrics["p7_replay_checked"] = len(window)
    report.metrics["p7_verdict_changed"] = changed
    report.check(
        7,
        "replay_log_sane",
        not problems.count,
        problems.detail(f"last {len(window)} of {total} rows are replay_run.v1")
        if total
        else "no replay runs yet",
        required=bool(total),
    )


def audit_full(
    layout: DistillLayout,
    settings: DistillSettings,
    *,
    heldout: Path | None = None,
    roster: Path | None = None,
) -> AuditReport:
    """Every phase over the latest run; never raises for bad outputs (they fail checks)."""
    report = AuditReport(run_id=_latest_run_id(layout))
    receipts = _receipts(layout)
    try:
        firewall: Firewall | None = load_firewall(layout, settings, heldout, roster)
    except DistillError:
        firewall = None
    _phase_0(layout, report, receipts)
    partition_problems = _phase_1_2(layout, report, receipts)
    _phase_3(layout, report, receipts)
    _phase_4(layout, report, receipts, firewall)
    _phase_5(layout, report, receipts)
    _phase_6(layout, report, partition_problems)
    _phase_7(layout, report)
    return report


def format_markdown(report: AuditReport) -> str:
    lines = [
        f"# Distillation audit-full — run `{report.run_id or 'none'}`",
        "",
        f"**{'PASS' if report.passed else 'FAIL'}**: "
        f"{sum(c.passed for c in report.checks if c.required)}/"
        f"{sum(c.required for c in report.checks)} required checks pass.",
        "",
        "| phase | check | required | result | detail |",
        "|---|---|---|---|---|",
    ]
    for c in report.checks:
        result = "pass" if c.passed else ("FAIL" if c.required else "warn")
        detail = c.detail.replace("|", "\\|")
        lines.append(
            f"| {c.phase} | `{c.name}` | {'yes' if c.required else 'info'} | {result} | {detail} |"
        )
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in sorted(report.metrics.items())]
    return "\n".join(lines) + "\n"


def write_report(layout: DistillLayout, report: AuditReport) -> list[str]:
    written = []
    for name, data in (
        ("audit_full.json", dump_json(report.as_dict())),
        ("audit_full.md", format_markdown(report).encode()),
    ):
        path = layout.reports / name
        if write_if_changed(path, data):
            written.append(layout.relative(path))
    return written


def append_baseline(
    layout: DistillLayout, report: AuditReport, *, git_commit: str
) -> dict[str, Any]:
    """Append `{recorded_at, git_commit, run_id, metrics}` to `audit_baselines.jsonl` (fsync'd)."""
    entry = {
        "recorded_at": now_rfc3339_nanos(),
        "git_commit": git_commit,
        "run_id": report.run_id,
        "metrics": dict(sorted(report.metrics.items())),
    }
    path = layout.baselines
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with path.open("ab") as fh:
        fh.write(orjson.dumps(entry) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    if created:
        fsync_dir(path.parent)
    return entry
