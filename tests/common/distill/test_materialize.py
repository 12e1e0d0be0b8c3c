"""materialize: one evidence record per observation, day-partitioned, idempotent, streaming."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import orjson

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.materialize import materialize
from lakehouse_common.distill.records import SIG_HASH, canonical
from tests.support.distill import Kb, digests, observation, read_jsonl, session


class TestFixtureKb:
    def test_counts_skips_and_kinds(
        self, fixture_layout: DistillLayout, settings: DistillSettings
    ) -> None:
        receipt = materialize(fixture_layout, settings).receipt
        assert (receipt["records_in"], receipt["records_out"]) == (33, 25)
        assert receipt["skips"] == {
            "bad_envelope": 2,
            "bad_event": 2,
            "blank_line": 1,
            "incomplete_line": 1,
            "invalid_json": 1,
            "not_an_object": 1,
        }
        assert receipt["by_kind"] == {
            "chat_run": 3,
            "human_feedback": 2,
            "iterate_session": 7,
            "observation": 1,
            "pathway": 2,
            "playbook_record": 3,
            "replay_run": 1,
            "search_run": 3,
            "validation_result": 3,
        }

    def test_a_skipped_line_names_its_source_and_offsets(
        self, fixture_layout: DistillLayout, settings: DistillSettings
    ) -> None:
        skipped = materialize(fixture_layout, settings).receipt["skipped"]
        invalid = next(s for s in skipped if s["reason"] == "invalid_json")
        assert invalid["source"] == "_kb/chat_runs.jsonl"
        assert invalid["line_offset"] == 3
        raw = (fixture_layout.kb / "chat_runs.jsonl").read_bytes()
        assert raw[invalid["byte_offset"] :].startswith(b"{not json\n")
        bad_event = [s for s in skipped if s["reason"] == "bad_event"]
        assert {s["source"] for s in bad_event} == {
            "_kb/search_runs.jsonl",
            "_kb/human_feedback.jsonl",
        }
        assert any("query_text" in s["detail"] for s in bad_event)

    def test_partitions_by_the_day_of_recorded_at(
        self, fixture_layout: DistillLayout, settings: DistillSettings
    ) -> None:
        materialize(fixture_layout, settings)
        files = [
            fixture_layout.relative(p) for p in fixture_layout.partitions(fixture_layout.evidence)
        ]
        assert "distill/evidence/2026-05-01/iterate_sessions.jsonl" in files
        assert "distill/evidence/2026-05-02/iterate_sessions.jsonl" in files
        for path in fixture_layout.partitions(fixture_layout.evidence):
            for record in read_jsonl(path):
                assert record["provenance"]["recorded_at"].startswith(path.parent.name)


class TestRecords:
    def test_first_line_has_line_offset_zero_and_a_sig_hash(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        line = observation(session("Confirm the shift", {"to": "555-123-4567", "body": "ok"}))
        kb.append("iterate_sessions", line)
        materialize(layout, settings)
        (path,) = layout.partitions(layout.evidence)
        (record,) = read_jsonl(path)
        provenance = record["provenance"]
        assert provenance["line_offset"] == 0
        assert b'"line_offset":0' in path.read_bytes()
        assert SIG_HASH.fullmatch(provenance["sig_hash"])
        assert provenance["sig_hash"] == hashlib.sha256(canonical(orjson.loads(line))).hexdigest()
        assert provenance["source"] == "_kb/iterate_sessions.jsonl"
        assert list(record) == [
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
        ]
        assert record["input"]["prompt"] == "Confirm the shift"
        assert record["tokens"] == {"prompt": 10, "completion": 5}

    def test_same_task_for_the_same_prompt_written_differently(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event("iterate_sessions", session("Confirm  the SHIFT!", None, trace="a"))
        kb.event("iterate_sessions", session("confirm the shift", None, trace="b"))
        kb.event("iterate_sessions", session("confirm the shift", None, kind="email", trace="c"))
        materialize(layout, settings)
        records = read_jsonl(layout.partitions(layout.evidence)[0])
        tasks = [r["task"]["id"] for r in records]
        assert tasks[0] == tasks[1] != tasks[2]

    def test_an_unknown_stream_keeps_its_event(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event("shift_changes", {"worker_id": "w-1"})
        receipt = materialize(layout, settings).receipt
        assert receipt["by_kind"] == {"observation": 1}
        (record,) = read_jsonl(layout.partitions(layout.evidence)[0])
        assert record["metadata"] == {"stream": "shift_changes", "event": {"worker_id": "w-1"}}


class TestIdempotence:
    def test_a_rerun_writes_nothing_and_keeps_every_byte(
        self, fixture_layout: DistillLayout, settings: DistillSettings
    ) -> None:
        first = materialize(fixture_layout, settings)
        assert first.written
        before = digests(fixture_layout.root)
        again = materialize(fixture_layout, settings)
        assert (again.written, again.removed) == ([], [])
        assert again.receipt == first.receipt
        assert digests(fixture_layout.root) == before

    def test_a_new_event_rewrites_only_its_partition(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event("chat_runs", {"status": "ok"}, recorded_at="2026-05-01T10:00:00.000000000Z")
        kb.event("pathways", {"demand_text": "d", "role": "r", "steps": [], "outcome": {}})
        materialize(layout, settings)
        kb.event("chat_runs", {"status": "ok"}, recorded_at="2026-05-03T10:00:00.000000000Z")
        again = materialize(layout, settings)
        assert again.written == [
            "distill/evidence/2026-05-03/chat_runs.jsonl",
            "distill/receipts/materialize.json",
        ]

    def test_evidence_of_lines_no_longer_in_kb_is_removed(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event("chat_runs", {"status": "ok"})
        path = kb.event("pathways", {"demand_text": "d", "role": "r", "steps": [], "outcome": {}})
        materialize(layout, settings)
        path.unlink()
        again = materialize(layout, settings)
        assert again.removed == ["distill/evidence/2026-05-01/pathways.jsonl"]
        assert [p.name for p in layout.partitions(layout.evidence)] == ["chat_runs.jsonl"]


class TestSkips:
    def test_listed_skips_are_capped_but_all_counted(self, layout: DistillLayout, kb: Kb) -> None:
        kb.append("chat_runs", *[b"nope"] * 7)
        receipt = materialize(layout, DistillSettings(max_listed_skips=3)).receipt
        assert receipt["skips"] == {"invalid_json": 7}
        assert len(receipt["skipped"]) == 3 and receipt["skipped_unlisted"] == 4
        assert [s["line_offset"] for s in receipt["skipped"]] == [0, 1, 2]

    def test_wrong_field_types_are_bad_events(
        self, layout: DistillLayout, kb: Kb, settings: DistillSettings
    ) -> None:
        kb.event(
            "playbook_records", {"query_text": "q", "role": "r", "answer_id": "w-1", "score": 7}
        )
        kb.event("validation_results", {"kind": "sms", "valid": "yes"})
        kb.event("iterate_sessions", {**session("p", None), "final": [1]})
        receipt = materialize(layout, settings).receipt
        assert receipt["skips"] == {"bad_event": 3} and receipt["records_out"] == 0
        details = sorted(s["detail"] for s in receipt["skipped"])
        assert details == [
            "final: expected an object or null",
            "score: expected a number in [0, 1]",
            "valid: expected a boolean",
        ]


def _peak_bytes(layout: DistillLayout, kb: Kb, lines: int) -> int:
    event = session("Confirm Monday's 7am forklift shift", {"to": "555-123-4567", "body": "ok"})
    chunk = b"".join(observation(event, trace_id=f"t-{n}") + b"\n" for n in range(1000))
    with (kb.dir / "iterate_sessions.jsonl").open("wb") as fh:
        for _ in range(lines // 1000):
            fh.write(chunk)
    tracemalloc.start()
    try:
        receipt = materialize(layout, DistillSettings()).receipt
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert receipt["records_out"] == lines
    return peak


def test_memory_does_not_grow_with_the_input(tmp_path: Path) -> None:
    """Streaming: 10× the lines, about the same peak of Python allocations (a record kept per
    line would add ~1 KB each: 10 MB here). The 1 000 000-event figure is in
    reports/distill_bench.md."""
    small_layout, big_layout = DistillLayout(tmp_path / "small"), DistillLayout(tmp_path / "big")
    small = _peak_bytes(small_layout, Kb(small_layout.data_dir), 1_000)
    big = _peak_bytes(big_layout, Kb(big_layout.data_dir), 10_000)
    assert big < small + 500_000, (small, big)
