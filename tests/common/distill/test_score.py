"""score: the rules table per kind, human labels overriding, scores mirroring the evidence."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.materialize import materialize
from lakehouse_common.distill.score import RULES, machine_tier, score
from lakehouse_common.distill.stage import DistillError
from tests.support.distill import Kb, read_jsonl, session
from tests.support.paths import repo_root


def record(kind: str, outcome: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "outcome": outcome}


class TestRules:
    @pytest.mark.parametrize(
        ("kind", "outcome", "tier"),
        [
            ("iterate_session", {"status": "accepted"}, "accepted"),
            ("iterate_session", {"status": "max_iter_exhausted"}, "rejected"),
            ("iterate_session", {"status": "infra_error"}, "rejected"),
            ("replay_run", {"status": "accepted"}, "accepted"),
            ("replay_run", {"status": "infra_error"}, "rejected"),
            ("validation_result", {"valid": True}, "accepted"),
            ("validation_result", {"valid": False}, "rejected"),
            ("playbook_record", {"score": 1.0}, "accepted"),
            ("playbook_record", {"score": 0.8}, "accepted"),
            ("playbook_record", {"score": 0.5}, "partial"),
            ("playbook_record", {"score": 0.49}, "rejected"),
            ("search_run", {"playbooks_applied": ["pb-1"], "result_count": 3}, "accepted"),
            ("search_run", {"playbooks_applied": [], "result_count": 3}, "partial"),
            ("search_run", {"playbooks_applied": [], "result_count": 0}, "rejected"),
            ("chat_run", {"status": "ok"}, "partial"),
            ("chat_run", {"status": "upstream_error"}, "rejected"),
            ("pathway", {"filled": True}, "accepted"),
            ("pathway", {"filled": False}, "rejected"),
            ("pathway", {}, "partial"),
            ("human_feedback", {"label": "rejected"}, "rejected"),
            ("human_feedback", {"label": "partial"}, "partial"),
            ("observation", {}, "partial"),
            ("from_the_future", {}, "partial"),
        ],
    )
    def test_machine_tier(self, kind: str, outcome: dict[str, Any], tier: str) -> None:
        assert machine_tier(record(kind, outcome), DistillSettings()).tier == tier

    def test_thresholds_come_from_the_settings(self) -> None:
        strict = DistillSettings(playbook_accept_score=0.95, playbook_partial_score=0.9)
        assert machine_tier(record("playbook_record", {"score": 0.9}), strict).tier == "partial"

    def test_every_kind_ends_with_a_catch_all(self) -> None:
        kinds = {rule.kind for rule in RULES} - {"*", "human_feedback"}
        for kind in kinds:
            assert machine_tier(record(kind, {}), DistillSettings()).kind == kind


def feedback(label: str, **target: Any) -> dict[str, Any]:
    return {"schema": "human_feedback.v1", "label": label, **target}


SMS = {"to": "555-123-4567", "body": "Shift confirmed."}


class TestHumanLabels:
    def test_trace_label_overrides_and_newest_wins(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event("iterate_sessions", session("p", SMS, trace="s-1"), trace_id="s-1")
        kb.event("validation_results", {"kind": "sms", "valid": True}, trace_id="s-1")
        kb.event("human_feedback", feedback("partial", target_trace_id="s-1"), trace_id="f-1")
        kb.event(
            "human_feedback",
            feedback("rejected", target_trace_id="s-1", target_kind="iterate_session"),
            trace_id="f-2",
        )
        materialize(layout, settings)
        receipt = score(layout, settings).receipt
        rows = {r["kind"]: r for p in layout.partitions(layout.scores) for r in read_jsonl(p)}
        session_row = rows["iterate_session"]
        assert (session_row["machine_tier"], session_row["tier"]) == ("accepted", "rejected")
        assert session_row["human_label"] == "rejected"
        assert session_row["rule"] == "iterate_session.accepted"
        assert rows["validation_result"]["tier"] == "partial"  # only the kind-free label applies
        assert receipt["human"] == {"feedback": 2, "labelled": 2, "changed": 2, "unmatched": 0}

    def test_a_sig_hash_label_wins_over_a_trace_label(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event("iterate_sessions", session("p", SMS, trace="s-1"), trace_id="s-1")
        materialize(layout, settings)
        (evidence,) = read_jsonl(layout.partitions(layout.evidence)[0])
        sig = evidence["provenance"]["sig_hash"]
        kb.event("human_feedback", feedback("partial", target_sig_hash=sig), trace_id="f-1")
        kb.event("human_feedback", feedback("rejected", target_trace_id="s-1"), trace_id="f-2")
        kb.event("human_feedback", feedback("rejected", target_trace_id="nobody"), trace_id="f-3")
        materialize(layout, settings)
        receipt = score(layout, settings).receipt
        rows = [r for p in layout.partitions(layout.scores) for r in read_jsonl(p)]
        (session_row,) = [r for r in rows if r["kind"] == "iterate_session"]
        assert session_row["tier"] == "partial"
        assert receipt["human"]["unmatched"] == 2  # the trace label lost; "nobody" matched nothing
        assert all(r["human_label"] is None for r in rows if r["kind"] == "human_feedback")

    def test_scores_mirror_the_evidence_line_for_line(
        self, fixture_layout: DistillLayout, settings: DistillSettings
    ) -> None:
        materialize(fixture_layout, settings)
        receipt = score(fixture_layout, settings).receipt
        assert receipt["tiers"] == {"accepted": 13, "partial": 5, "rejected": 7}
        assert receipt["human"]["labelled"] == 2
        for path in fixture_layout.partitions(fixture_layout.evidence):
            evidence = read_jsonl(path)
            scores = read_jsonl(fixture_layout.scores / path.relative_to(fixture_layout.evidence))
            assert [e["provenance"]["sig_hash"] for e in evidence] == [
                s["sig_hash"] for s in scores
            ]

    def test_a_rerun_writes_nothing(
        self, fixture_layout: DistillLayout, settings: DistillSettings
    ) -> None:
        materialize(fixture_layout, settings)
        first = score(fixture_layout, settings)
        again = score(fixture_layout, settings)
        assert first.written and (again.written, again.removed) == ([], [])


def test_score_needs_materialized_evidence(
    layout: DistillLayout, settings: DistillSettings
) -> None:
    with pytest.raises(DistillError, match="materialize"):
        score(layout, settings)


def test_evidence_changed_behind_the_receipt_is_refused(
    fixture_layout: DistillLayout, settings: DistillSettings
) -> None:
    materialize(fixture_layout, settings)
    fixture_layout.partitions(fixture_layout.evidence)[0].unlink()
    with pytest.raises(DistillError, match="differ from the materialize receipt"):
        score(fixture_layout, settings)


def test_the_rules_table_is_in_the_docs() -> None:
    doc = (repo_root() / "docs" / "distill.md").read_text()
    for rule in RULES:
        assert f"| `{rule.kind}` | {rule.when} | {rule.tier} | `{rule.id}` |" in doc, rule.id
