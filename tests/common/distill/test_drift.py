"""drift: the table's verdicts, and picking baselines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lakehouse_common.distill.drift import (
    drift_table,
    format_drift,
    load_baselines,
    select_baseline,
)
from lakehouse_common.distill.stage import DistillError


def verdicts(before: dict[str, int], after: dict[str, int]) -> dict[str, str]:
    return {row.metric: row.verdict for row in drift_table(before, after, 0.2)}


class TestVerdicts:
    def test_plus_583_percent_warns(self) -> None:
        (row,) = drift_table({"p2_evidence_rows": 12}, {"p2_evidence_rows": 82}, 0.2)
        assert row.verdict == "warn"
        assert round(row.change or 0, 4) == 5.8333
        assert "+583%" in format_drift([row], "A", "B")

    def test_leaving_zero_warns(self) -> None:
        rows = drift_table({"p3_accepted": 0, "p3_human": 0}, {"p3_accepted": 386, "p3_human": 0})
        by_metric = {r.metric: r for r in rows}
        assert by_metric["p3_accepted"].verdict == "warn"
        assert (
            by_metric["p3_accepted"].note == "left zero" and by_metric["p3_accepted"].change is None
        )
        assert by_metric["p3_human"].verdict == "ok"

    def test_unchanged_is_ok(self) -> None:
        metrics = {"p4_sft_rows": 353, "p4_rag_rows": 448, "p4_pref_pairs": 83}
        assert set(verdicts(metrics, dict(metrics)).values()) == {"ok"}

    def test_the_threshold_is_exclusive(self) -> None:
        assert verdicts({"m": 100}, {"m": 120}) == {"m": "ok"}
        assert verdicts({"m": 100}, {"m": 121}) == {"m": "warn"}
        assert verdicts({"m": 100}, {"m": 79}) == {"m": "warn"}
        assert verdicts({"m": 100}, {"m": 0}) == {"m": "warn"}

    def test_a_metric_in_one_baseline_only_warns(self) -> None:
        rows = {r.metric: r for r in drift_table({"old": 1}, {"new": 1}, 0.2)}
        assert (rows["old"].verdict, rows["old"].note) == ("warn", "only in A")
        assert (rows["new"].verdict, rows["new"].note) == ("warn", "only in B")

    def test_the_table_counts_warnings(self) -> None:
        text = format_drift(drift_table({"a": 1, "b": 0}, {"a": 1, "b": 2}, 0.2), "A", "B")
        assert text.splitlines()[0].split() == ["metric", "A", "B", "change", "verdict"]
        assert text.endswith("1 of 2 metrics warn")


class TestBaselines:
    @pytest.fixture
    def log(self, tmp_path: Path) -> Path:
        path = tmp_path / "audit_baselines.jsonl"
        entries = [
            {
                "recorded_at": "t1",
                "git_commit": "a" * 40,
                "run_id": "aaaa1111",
                "metrics": {"m": 1},
            },
            {
                "recorded_at": "t2",
                "git_commit": "a" * 40,
                "run_id": "bbbb2222",
                "metrics": {"m": 2},
            },
            {
                "recorded_at": "t3",
                "git_commit": "a" * 40,
                "run_id": "cccc3333",
                "metrics": {"m": 3},
            },
        ]
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
        return path

    def test_select_by_position_or_run_id(self, log: Path) -> None:
        entries = load_baselines(log)
        assert select_baseline(entries, "0")["run_id"] == "aaaa1111"
        assert select_baseline(entries, "-1")["run_id"] == "cccc3333"
        assert select_baseline(entries, "bbbb")["metrics"] == {"m": 2}

    @pytest.mark.parametrize("ref", ["3", "-4", "dddd", ""])
    def test_an_unknown_baseline_is_refused(self, log: Path, ref: str) -> None:
        with pytest.raises(DistillError):
            select_baseline(load_baselines(log), ref)

    def test_a_malformed_log_names_the_line(self, log: Path) -> None:
        with log.open("ab") as fh:
            fh.write(b'{"run_id": "x"}\n')
        with pytest.raises(DistillError, match="line 4"):
            load_baselines(log)

    def test_no_log_says_how_to_make_one(self, tmp_path: Path) -> None:
        with pytest.raises(DistillError, match="--append-baseline"):
            load_baselines(tmp_path / "none.jsonl")
