"""`lakehouse distill …` in process: output, exit codes, and refusals of bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from lakehouse_common.cli import app
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.ops.stack import free_port
from tests.support.distill import HELDOUT

runner = CliRunner()


def distill(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["distill", *args])
    return result.exit_code, result.output


def at(layout: DistillLayout) -> list[str]:
    return ["--data-dir", str(layout.data_dir)]


class TestRun:
    def test_run_twice_then_drift(self, fixture_layout: DistillLayout) -> None:
        code, out = distill(
            "run", *at(fixture_layout), "--heldout", str(HELDOUT), "--append-baseline"
        )
        assert code == 0, out
        assert "materialize  33 lines in → 25 evidence rows (8 skipped)" in out
        assert "export       3 SFT, 9 RAG, 2 pairs; 5 quarantined" in out
        assert "audit-full PASS" in out and "baseline appended" in out
        code, out = distill(
            "run", *at(fixture_layout), "--heldout", str(HELDOUT), "--append-baseline"
        )
        assert code == 0, out
        assert out.count("[nothing new]") == 3 and "nothing new" in out.splitlines()[3]
        code, out = distill("drift", *at(fixture_layout))
        assert code == 0, out
        assert "0 of 19 metrics warn" in out

    def test_run_json(self, fixture_layout: DistillLayout) -> None:
        code, out = distill("run", *at(fixture_layout), "--heldout", str(HELDOUT), "--json")
        assert code == 0, out
        body = orjson.loads(out[out.index("{") :])
        assert body["audit"]["passed"] is True
        assert body["summary"]["receipts"]["score"]["tiers"]["accepted"] == 13

    def test_stages_one_by_one(self, fixture_layout: DistillLayout) -> None:
        for stage in ("materialize", "score", "export"):
            code, out = distill(stage, *at(fixture_layout), "--json")
            assert code == 0, out
            assert orjson.loads(out[out.index("{") :])["stage"] == stage
        code, out = distill("audit-full", *at(fixture_layout))
        assert code == 1, out  # no run summary yet: a stage alone writes none
        assert "✗ p0 summary_present" in out


class TestRefusals:
    def test_score_before_materialize(self, layout: DistillLayout) -> None:
        code, out = distill("score", *at(layout))
        assert code == 2 and "run `lakehouse distill materialize` first" in out

    def test_export_with_a_missing_roster(
        self, fixture_layout: DistillLayout, tmp_path: Path
    ) -> None:
        distill("materialize", *at(fixture_layout))
        distill("score", *at(fixture_layout))
        code, out = distill("export", *at(fixture_layout), "--roster", str(tmp_path / "x.parquet"))
        assert code == 2 and "does not exist" in out

    def test_drift_without_baselines(self, layout: DistillLayout) -> None:
        code, out = distill("drift", *at(layout))
        assert code == 2 and "--append-baseline" in out

    @pytest.mark.parametrize(
        "args",
        [
            ["--label", "great", "--trace-id", "t-1"],
            ["--label", "accepted"],
            ["--label", "accepted", "--sig-hash", "ABC"],
            ["--label", "accepted", "--trace-id", "t-1", "--kind", "Bad Kind"],
        ],
        ids=["unknown-label", "no-target", "bad-sig-hash", "bad-kind"],
    )
    def test_bad_feedback_is_refused_before_any_call(self, args: list[str]) -> None:
        code, out = distill("feedback", *args, "--gateway", "http://127.0.0.1:1")
        assert code == 2 and "bad feedback" in out

    def test_feedback_to_an_unreachable_gateway(self) -> None:
        gateway = f"http://127.0.0.1:{free_port()}"
        code, out = distill(
            "feedback", "--label", "accepted", "--trace-id", "t-1", "--gateway", gateway
        )
        assert code == 1 and "not reachable" in out

    def test_replay_limit_must_be_positive(self, layout: DistillLayout) -> None:
        code, out = distill("replay", "--limit", "0", *at(layout))
        assert code == 2 and "--limit" in out

    def test_replay_without_recorded_tasks(self, layout: DistillLayout) -> None:
        code, out = distill("replay", "--limit", "3", *at(layout))
        assert code == 0 and "no recorded iterate tasks" in out
