"""audit-full: a clean run passes every required check; each kind of damage fails its check."""

from __future__ import annotations

import orjson
import pytest

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.audit_full import AuditReport, append_baseline, audit_full
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.run import RunResult, run_pipeline
from tests.support.distill import HELDOUT, digests, read_jsonl


@pytest.fixture
def ran(fixture_layout: DistillLayout) -> RunResult:
    return run_pipeline(fixture_layout, DistillSettings(), heldout=HELDOUT)


def audit(layout: DistillLayout) -> AuditReport:
    return audit_full(layout, DistillSettings(), heldout=HELDOUT)


def failed(report: AuditReport) -> set[str]:
    return {c.name for c in report.required_failed}


class TestCleanRun:
    def test_every_required_check_passes(self, ran: RunResult) -> None:
        report = ran.audit
        assert report.passed, [c.as_dict() for c in report.required_failed]
        assert [c.phase for c in report.checks] == sorted(c.phase for c in report.checks)
        assert {c.phase for c in report.checks} == set(range(8))
        assert report.metrics["p2_evidence_rows"] == 25
        assert report.metrics["p2_evidence_skips"] == 8
        assert (report.metrics["p3_accepted"], report.metrics["p3_partial"]) == (13, 5)
        assert (report.metrics["p3_rejected"], report.metrics["p3_human"]) == (7, 2)
        assert report.metrics["p4_sft_rows"] == 3
        assert report.metrics["p4_rag_rows"] == 9
        assert report.metrics["p4_pref_pairs"] == 2
        assert report.metrics["p4_total_quarantined"] == 5
        assert report.metrics["p7_replay_rows"] == 1
        info = {c.name: c.passed for c in report.checks if not c.required}
        assert info == {"heldout_set_loaded": True, "roster_check_enabled": False}

    def test_the_summary_names_the_run(self, ran: RunResult, fixture_layout: DistillLayout) -> None:
        summary = orjson.loads(fixture_layout.summary(ran.summary["run_id"]).read_bytes())
        assert summary["schema_version"] == 1
        assert len(summary["run_hash"]) == 64 and summary["run_id"] == summary["run_hash"][:16]
        assert len(summary["git_commit"]) == 40
        assert summary["stages"] == ["materialize", "score", "export"]
        assert fixture_layout.latest_run.read_text().strip() == summary["run_id"]

    def test_a_second_run_is_a_no_op(self, ran: RunResult, fixture_layout: DistillLayout) -> None:
        before = digests(fixture_layout.root)
        again = run_pipeline(fixture_layout, DistillSettings(), heldout=HELDOUT)
        assert again.written == []
        assert again.summary == ran.summary
        assert digests(fixture_layout.root) == before

    def test_baselines_append_the_envelope(
        self, ran: RunResult, fixture_layout: DistillLayout
    ) -> None:
        append_baseline(fixture_layout, ran.audit, git_commit="a" * 40)
        append_baseline(fixture_layout, ran.audit, git_commit="a" * 40)
        entries = read_jsonl(fixture_layout.baselines)
        assert len(entries) == 2
        assert list(entries[0]) == ["recorded_at", "git_commit", "run_id", "metrics"]
        assert entries[0]["run_id"] == ran.summary["run_id"]
        assert entries[0]["metrics"]["p4_sft_rows"] == 3


class TestDamage:
    def test_a_short_run_hash_fails(self, ran: RunResult, fixture_layout: DistillLayout) -> None:
        path = fixture_layout.summary(ran.summary["run_id"])
        summary = orjson.loads(path.read_bytes())
        summary["run_hash"] = summary["run_hash"][:40]
        path.write_bytes(orjson.dumps(summary))
        assert failed(audit(fixture_layout)) == {"summary_valid"}

    def test_a_missing_summary_fails(self, ran: RunResult, fixture_layout: DistillLayout) -> None:
        fixture_layout.summary(ran.summary["run_id"]).unlink()
        assert {"summary_present", "summary_valid"} <= failed(audit(fixture_layout))

    def test_an_edited_evidence_file_fails(
        self, ran: RunResult, fixture_layout: DistillLayout
    ) -> None:
        path = fixture_layout.partitions(fixture_layout.evidence)[0]
        path.write_bytes(path.read_bytes().replace(b'"line_offset":0', b'"line_offset":-1'))
        assert failed(audit(fixture_layout)) >= {
            "rows_match_schemas",
            "evidence_files_match_receipt",
        }

    def test_a_leaked_held_out_prompt_fails(
        self, ran: RunResult, fixture_layout: DistillLayout
    ) -> None:
        path = fixture_layout.exports / "rag.jsonl"
        rows = read_jsonl(path)
        rows[0]["text"] = "Need 4 CNC Operators in Rockford IL"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        report = audit(fixture_layout)
        assert "firewall_holds" in failed(report)
        detail = next(c.detail for c in report.checks if c.name == "firewall_holds")
        assert "heldout_exact" in detail

    def test_an_injected_self_pair_fails(
        self, ran: RunResult, fixture_layout: DistillLayout
    ) -> None:
        path = fixture_layout.exports / "preference_pairs.jsonl"
        rows = read_jsonl(path)
        rows[0]["rejected"] = rows[0]["chosen"]
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        assert "firewall_holds" in failed(audit(fixture_layout))

    def test_an_sft_row_of_a_rejected_record_fails(
        self, ran: RunResult, fixture_layout: DistillLayout
    ) -> None:
        pairs = read_jsonl(fixture_layout.exports / "preference_pairs.jsonl")
        rejected_sig = pairs[0]["rejected_provenance"]["sig_hash"]
        path = fixture_layout.exports / "sft.jsonl"
        rows = read_jsonl(path)
        rows[0]["provenance"]["sig_hash"] = rejected_sig
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        assert "acceptance_invariants" in failed(audit(fixture_layout))

    def test_a_malformed_replay_row_fails_phase_7(
        self, ran: RunResult, fixture_layout: DistillLayout
    ) -> None:
        with (fixture_layout.kb / "replay_runs.jsonl").open("ab") as fh:
            fh.write(b'{"schema":"observation.v1","event":{"schema":"replay_run.v1"}}\n')
        report = audit(fixture_layout)
        assert failed(report) == {"replay_log_sane"}

    def test_no_replays_is_only_informational(self, fixture_layout: DistillLayout) -> None:
        (fixture_layout.kb / "replay_runs.jsonl").unlink()
        report = run_pipeline(fixture_layout, DistillSettings(), heldout=HELDOUT).audit
        check = next(c for c in report.checks if c.name == "replay_log_sane")
        assert not check.required and report.passed
        assert report.metrics["p7_replay_rows"] == 0


def test_an_empty_data_dir_fails_phase_0(layout: DistillLayout) -> None:
    report = audit(layout)
    assert {"receipts_present", "summary_present"} <= failed(report)
