"""Stage 2, score: each evidence record → a tier, `accepted`, `partial` or `rejected` (SPEC §7).

The machine tier comes from the record's own outcome by the first matching row of
:data:`RULES` (the same table is in docs/distill.md). A human label overrides it: the newest
`human_feedback` naming the record's `sig_hash` wins, else the newest naming its `trace_id`
(and, when the feedback names one, its `kind`). Feedback records take their own label as tier.

Output: `scores/YYYY-MM-DD/<stream>.jsonl` mirroring the evidence files line for line::

    {"sig_hash": "…", "kind": "iterate_session", "task_id": "…", "tier": "rejected",
     "machine_tier": "accepted", "rule": "iterate_session.accepted", "human_label": "rejected",
     "source": "_kb/iterate_sessions.jsonl", "line_offset": 3}

Memory: the feedback labels are held (one entry per feedback event, human-scale); the evidence
is streamed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.jsonl import OutputTree, ProgressHook, read_lines
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.stage import (
    RECEIPT_SCHEMA_VERSION,
    DistillError,
    StageResult,
    save_receipt,
)

__all__ = ["RULES", "FeedbackIndex", "ScoreRule", "machine_tier", "score", "score_row"]

Record = Mapping[str, Any]


@dataclass(frozen=True)
class ScoreRule:
    id: str
    kind: str
    when: str  # the condition, in words (docs/distill.md renders the table from these)
    tier: str
    test: Callable[[Record, DistillSettings], bool]


def _outcome(record: Record) -> Mapping[str, Any]:
    outcome = record.get("outcome")
    return outcome if isinstance(outcome, Mapping) else {}


def _always(record: Record, settings: DistillSettings) -> bool:
    return True


def _playbook_score(record: Record) -> float:
    value = _outcome(record).get("score", 0)
    return float(value) if isinstance(value, int | float) else 0.0


# First match wins, per kind. Every kind ends with a catch-all, so every record gets a tier.
RULES: Final[tuple[ScoreRule, ...]] = (
    ScoreRule(
        "iterate_session.accepted",
        "iterate_session",
        "the session's status is `accepted` (a reply passed the validator)",
        "accepted",
        lambda r, s: _outcome(r).get("status") == "accepted",
    ),
    ScoreRule(
        "iterate_session.failed",
        "iterate_session",
        "`max_iter_exhausted` or `infra_error`",
        "rejected",
        _always,
    ),
    ScoreRule(
        "replay_run.accepted",
        "replay_run",
        "the replayed reply passed the validator",
        "accepted",
        lambda r, s: _outcome(r).get("status") == "accepted",
    ),
    ScoreRule(
        "replay_run.failed",
        "replay_run",
        "it did not, held no JSON, or a daemon failed",
        "rejected",
        _always,
    ),
    ScoreRule(
        "validation_result.valid",
        "validation_result",
        "`valid` is true",
        "accepted",
        lambda r, s: _outcome(r).get("valid") is True,
    ),
    ScoreRule(
        "validation_result.invalid",
        "validation_result",
        "`valid` is false",
        "rejected",
        _always,
    ),
    ScoreRule(
        "playbook_record.approved",
        "playbook_record",
        "score ≥ `distill.playbook_accept_score` (0.8)",
        "accepted",
        lambda r, s: _playbook_score(r) >= s.playbook_accept_score,
    ),
    ScoreRule(
        "playbook_record.lukewarm",
        "playbook_record",
        "score ≥ `distill.playbook_partial_score` (0.5)",
        "partial",
        lambda r, s: _playbook_score(r) >= s.playbook_partial_score,
    ),
    ScoreRule(
        "playbook_record.low",
        "playbook_record",
        "a lower score",
        "rejected",
        _always,
    ),
    ScoreRule(
        "search_run.playbook",
        "search_run",
        "a playbook-approved answer is among the results",
        "accepted",
        lambda r, s: bool(_outcome(r).get("playbooks_applied")),
    ),
    ScoreRule(
        "search_run.results",
        "search_run",
        "results, none approved yet",
        "partial",
        lambda r, s: bool(_outcome(r).get("result_count")),
    ),
    ScoreRule(
        "search_run.empty",
        "search_run",
        "no results",
        "rejected",
        _always,
    ),
    ScoreRule(
        "chat_run.ok",
        "chat_run",
        "status `ok` (an answer, not yet validated)",
        "partial",
        lambda r, s: _outcome(r).get("status") == "ok",
    ),
    ScoreRule(
        "chat_run.error",
        "chat_run",
        "the call failed",
        "rejected",
        _always,
    ),
    ScoreRule(
        "pathway.filled",
        "pathway",
        "`outcome.filled` is true",
        "accepted",
        lambda r, s: _outcome(r).get("filled") is True,
    ),
    ScoreRule(
        "pathway.unfilled",
        "pathway",
        "`outcome.filled` is false",
        "rejected",
        lambda r, s: _outcome(r).get("filled") is False,
    ),
    ScoreRule(
        "pathway.open",
        "pathway",
        "no fill outcome",
        "partial",
        _always,
    ),
    *(
        ScoreRule(
            f"human_feedback.{tier}",
            "human_feedback",
            f"its label is `{tier}`",
            tier,
            lambda r, s, tier=tier: _outcome(r).get("label") == tier,  # type: ignore[misc]
        )
        for tier in ("accepted", "partial", "rejected")
    ),
    ScoreRule(
        "any.unknown",
        "*",
        "any other record (a stream no transform knows)",
        "partial",
        _always,
    ),
)

_BY_KIND: Final[dict[str, tuple[ScoreRule, ...]]] = {
    kind: tuple(rule for rule in RULES if rule.kind in (kind, "*"))
    for kind in {rule.kind for rule in RULES}
}


def machine_tier(record: Record, settings: DistillSettings) -> ScoreRule:
    kind = str(record.get("kind", ""))
    for rule in _BY_KIND.get(kind, _BY_KIND["*"]):
        if rule.test(record, settings):
            return rule
    raise AssertionError(f"no catch-all rule for kind {kind!r}")  # pragma: no cover


@dataclass
class FeedbackIndex:
    """The newest label per target; a target is a sig_hash, or a trace id (+ optional kind)."""

    by_sig: dict[str, str] = field(default_factory=dict)
    by_trace: dict[str, list[tuple[str | None, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Every feedback event's target, and the targets that named at least one record.
    targets: list[tuple[str, ...]] = field(default_factory=list)
    matched: set[tuple[str, ...]] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.targets)

    @property
    def unmatched(self) -> int:
        return sum(target not in self.matched for target in self.targets)

    def add(self, record: Record) -> None:
        target = record.get("input") or {}
        label = _outcome(record).get("label")
        if not isinstance(target, Mapping) or label not in ("accepted", "partial", "rejected"):
            return
        sig, trace, kind = (
            target.get("target_sig_hash"),
            target.get("target_trace_id"),
            target.get("target_kind"),
        )
        if isinstance(sig, str):
            self.by_sig[sig] = str(label)  # in recording order: the newest wins
            self.targets.append(("sig", sig))
        elif isinstance(trace, str):
            kind = kind if isinstance(kind, str) else None
            self.by_trace[trace].append((kind, str(label)))
            self.targets.append(("trace", trace, kind or ""))

    def label_of(self, record: Record) -> str | None:
        if record.get("kind") == "human_feedback":
            return None
        provenance = record.get("provenance") or {}
        sig = str(provenance.get("sig_hash", ""))
        if sig in self.by_sig:
            self.matched.add(("sig", sig))
            return self.by_sig[sig]
        trace = str(record.get("trace_id", ""))
        found: str | None = None
        for kind, label in self.by_trace.get(trace, ()):
            if kind is None or kind == record.get("kind"):
                self.matched.add(("trace", trace, kind or ""))
                found = label  # in recording order: the newest wins
        return found


def score_row(record: Record, settings: DistillSettings, feedback: FeedbackIndex) -> dict[str, Any]:
    rule = machine_tier(record, settings)
    human = feedback.label_of(record)
    provenance = record.get("provenance") or {}
    task = record.get("task") or {}
    return {
        "sig_hash": provenance.get("sig_hash"),
        "kind": record.get("kind"),
        "task_id": task.get("id"),
        "tier": human or rule.tier,
        "machine_tier": rule.tier,
        "rule": rule.id,
        "human_label": human,
        "source": provenance.get("source"),
        "line_offset": provenance.get("line_offset"),
    }


def _records(path: Path) -> Any:
    for number, _, raw, complete in read_lines(path):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if not complete or not isinstance(record, dict):
            raise DistillError(
                f"{path}: line {number} is not an evidence record; run `lakehouse distill "
                "materialize` again"
            )
        yield raw, record


def evidence_digest(layout: DistillLayout) -> list[dict[str, Any]]:
    """The evidence files as the materialize receipt lists them (checked against the disk)."""
    path = layout.receipt("materialize")
    try:
        receipt = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        raise DistillError(
            f"no materialize receipt at {path}: run `lakehouse distill materialize` first"
        ) from None
    outputs: list[dict[str, Any]] = receipt.get("outputs", [])
    on_disk = sorted(layout.relative(p) for p in layout.partitions(layout.evidence))
    if sorted(o["path"] for o in outputs) != on_disk:
        raise DistillError(
            "the evidence files differ from the materialize receipt: run `lakehouse distill "
            "materialize` again"
        )
    return outputs


def score(
    layout: DistillLayout, settings: DistillSettings, *, progress: ProgressHook | None = None
) -> StageResult:
    inputs = evidence_digest(layout)
    files = layout.partitions(layout.evidence)
    feedback = FeedbackIndex()
    for path in files:
        if path.stem == "human_feedback":
            for _, record in _records(path):
                feedback.add(record)

    tree = OutputTree(layout.scores, layout.data_dir)
    tiers: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    by_rule: Counter[str] = Counter()
    labelled = changed = records = 0
    try:
        for path in files:
            relative = path.relative_to(layout.evidence).as_posix()
            tree.touch(relative)
            for raw, record in _records(path):
                row = score_row(record, settings, feedback)
                tree.write(relative, orjson.dumps(row))
                records += 1
                tiers[row["tier"]] += 1
                by_kind[str(row["kind"])][row["tier"]] += 1
                by_rule[row["rule"]] += 1
                if row["human_label"] is not None:
                    labelled += 1
                    changed += row["human_label"] != row["machine_tier"]
                if progress is not None:
                    progress(len(raw) + 1)
        committed = tree.commit()
    except BaseException:
        tree.discard()
        raise
    receipt = {
        "stage": "score",
        "schema_version": RECEIPT_SCHEMA_VERSION,
        "inputs": inputs,
        "records_in": records,
        "records_out": records,
        "tiers": {tier: tiers[tier] for tier in ("accepted", "partial", "rejected")},
        "by_kind": {kind: dict(sorted(c.items())) for kind, c in sorted(by_kind.items())},
        "by_rule": dict(sorted(by_rule.items())),
        "human": {
            "feedback": feedback.count,
            "labelled": labelled,
            "changed": changed,
            "unmatched": feedback.unmatched,
        },
        "settings": {
            "playbook_accept_score": settings.playbook_accept_score,
            "playbook_partial_score": settings.playbook_partial_score,
        },
        "outputs": [f.as_dict() for f in committed.files],
    }
    return save_receipt(layout, StageResult("score", receipt, committed.written, committed.removed))
