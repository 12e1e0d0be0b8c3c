"""export and its contamination firewall: each kind of leak is quarantined with its reason and
never reaches an export; clean rows and real pairs do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.export import export
from lakehouse_common.distill.firewall import HeldoutSet
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.materialize import materialize
from lakehouse_common.distill.score import score
from lakehouse_common.distill.stage import DistillError, StageResult
from lakehouse_common.ops.roster import generate_roster
from tests.support.distill import HELDOUT, Kb, read_jsonl, session

HELD_OUT_PROMPT = "Email Dana Kim the onboarding checklist for the Joliet warehouse."
CLEAN_SMS = {"to": "555-123-4567", "body": "Your Monday shift at 7am is confirmed."}
EMAIL = {"to": "ops@example.org", "subject": "Shift", "body": "See you Monday."}


@pytest.fixture(scope="module")
def roster_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    table = generate_roster(40, seed=5)
    path = tmp_path_factory.mktemp("roster") / "workers.parquet"
    pq.write_table(table, path)
    return path, table.select(["id", "phone", "email"]).to_pylist()


def run(layout: DistillLayout, roster: Path | None, **settings: Any) -> StageResult:
    distill = DistillSettings(**settings)
    materialize(layout, distill)
    score(layout, distill)
    return export(layout, distill, heldout=HELDOUT, roster=roster)


def exports(layout: DistillLayout) -> dict[str, list[dict[str, Any]]]:
    return {
        name: read_jsonl(layout.exports / f"{name}.jsonl")
        for name in ("sft", "rag", "preference_pairs", "quarantine")
    }


def exported_prompts(layout: DistillLayout) -> list[str]:
    out = exports(layout)
    return [r["messages"][1]["content"] for r in out["sft"]] + [r["text"] for r in out["rag"]]


def quarantined(layout: DistillLayout, export_name: str) -> list[dict[str, Any]]:
    return [q for q in exports(layout)["quarantine"] if q["export"] == export_name]


class TestFirewall:
    def test_a_held_out_prompt_is_quarantined(self, layout: DistillLayout, kb: Kb) -> None:
        kb.event("iterate_sessions", session(HELD_OUT_PROMPT, EMAIL, kind="email"))
        receipt = run(layout, None).receipt
        (sft,) = quarantined(layout, "sft")
        assert sft["reasons"] == ["heldout_exact"]
        assert quarantined(layout, "rag")[0]["reasons"] == ["heldout_exact"]
        assert receipt["rows"] == {"sft": 0, "rag": 0, "preference": 0}
        assert receipt["quarantine_reasons"]["sft"] == {"heldout_exact": 1}
        assert receipt["firewall"]["heldout"]["prompts"] == 3

    def test_a_near_copy_of_a_held_out_prompt_is_quarantined(
        self, layout: DistillLayout, kb: Kb
    ) -> None:
        near = (
            "Please draft an SMS asking Priya Shah to confirm Thursday's 6am picker shift at the "
            "Elgin warehouse, thanks!"
        )
        kb.event("iterate_sessions", session(near, CLEAN_SMS))
        run(layout, None)
        assert quarantined(layout, "sft")[0]["reasons"] == ["heldout_ngram"]
        assert exported_prompts(layout) == []

    def test_a_prompt_with_an_ssn_is_quarantined(self, layout: DistillLayout, kb: Kb) -> None:
        prompt = "Email payroll that worker 123-45-6789 is missing a timesheet"
        kb.event("iterate_sessions", session(prompt, EMAIL, kind="email"))
        run(layout, None)
        assert quarantined(layout, "sft")[0]["reasons"] == ["pii_ssn"]
        assert exports(layout)["sft"] == []

    def test_a_roster_phone_is_quarantined_however_written(
        self, layout: DistillLayout, kb: Kb, roster_rows: tuple[Path, list[dict[str, Any]]]
    ) -> None:
        path, rows = roster_rows
        phone = rows[3]["phone"]  # "(AAA) 555-01DD"
        digits = "".join(ch for ch in phone if ch.isdigit())
        respelled = f"+1 {digits[:3]}.{digits[3:6]}.{digits[6:]}"
        kb.event("iterate_sessions", session("Confirm the shift", {"to": respelled, "body": "Hi"}))
        receipt = run(layout, path).receipt
        assert quarantined(layout, "sft")[0]["reasons"] == ["pii_roster_phone"]
        assert exports(layout)["sft"] == [] and exports(layout)["rag"] == []
        assert receipt["firewall"]["roster"]["workers"] == 40

    def test_a_roster_email_is_quarantined(
        self, layout: DistillLayout, kb: Kb, roster_rows: tuple[Path, list[dict[str, Any]]]
    ) -> None:
        path, rows = roster_rows
        address = rows[7]["email"].upper()
        payload = {"to": address, "subject": "Shift", "body": "See you Monday."}
        kb.event("iterate_sessions", session("Email the shift details", payload, kind="email"))
        run(layout, path)
        assert quarantined(layout, "sft")[0]["reasons"] == ["pii_roster_email"]
        assert exports(layout)["sft"] == []

    def test_a_roster_phone_in_the_context_is_quarantined(
        self, layout: DistillLayout, kb: Kb, roster_rows: tuple[Path, list[dict[str, Any]]]
    ) -> None:
        path, rows = roster_rows
        context = {"worker": {"id": rows[2]["id"], "phone": rows[2]["phone"]}}
        kb.event("iterate_sessions", session("Confirm the shift", CLEAN_SMS, context=context))
        run(layout, path)
        (sft,) = quarantined(layout, "sft")
        assert sft["reasons"] == ["pii_roster_phone"]
        assert rows[2]["phone"] in sft["row"]["messages"][1]["content"]

    def test_contacts_not_on_the_roster_pass(
        self, layout: DistillLayout, kb: Kb, roster_rows: tuple[Path, list[dict[str, Any]]]
    ) -> None:
        kb.event("iterate_sessions", session("Confirm the shift", CLEAN_SMS))
        kb.event("iterate_sessions", session("Email ops", EMAIL, kind="email", trace="s-2"))
        receipt = run(layout, roster_rows[0]).receipt
        assert receipt["rows"]["sft"] == 2 and receipt["total_quarantined"] == 0

    def test_a_self_pair_is_quarantined(self, layout: DistillLayout, kb: Kb) -> None:
        bad = {"to": "12345", "body": "Shift confirmed."}
        kb.event(
            "iterate_sessions",
            session("Confirm the shift", bad, status="max_iter_exhausted", trace="s-1"),
            trace_id="s-1",
        )
        kb.event(
            "iterate_sessions",
            session("Confirm the shift", bad, status="max_iter_exhausted", trace="s-2"),
            trace_id="s-2",
        )
        kb.event(
            "human_feedback",
            {"label": "accepted", "target_trace_id": "s-2", "note": "internal test number"},
            trace_id="f-1",
        )
        receipt = run(layout, None).receipt
        (pair,) = quarantined(layout, "preference")
        assert pair["reasons"] == ["self_pair"]
        assert pair["row"]["chosen"] == pair["row"]["rejected"]
        assert exports(layout)["preference_pairs"] == []
        assert receipt["quarantine_reasons"]["preference"] == {"self_pair": 1}

    def test_a_row_keeps_every_reason(self, layout: DistillLayout, kb: Kb) -> None:
        prompt = f"{HELD_OUT_PROMPT} Worker SSN 123-45-6789."
        kb.event("iterate_sessions", session(prompt, EMAIL, kind="email"))
        run(layout, None)
        assert quarantined(layout, "sft")[0]["reasons"] == ["heldout_ngram", "pii_ssn"]


class TestExports:
    def test_sft_rag_and_pairs(self, layout: DistillLayout, kb: Kb) -> None:
        bad = {"to": "12345", "body": "Shift confirmed."}
        kb.event("iterate_sessions", session("Confirm the shift", CLEAN_SMS, trace="s-1"))
        kb.event(
            "iterate_sessions",
            session("confirm the shift!", bad, status="max_iter_exhausted", trace="s-2"),
        )
        kb.event(
            "iterate_sessions",
            session("Confirm the shift", None, status="infra_error", trace="s-3"),
        )
        kb.event(
            "playbook_records",
            {"query_text": "Need 2 Welders", "role": "Welder", "answer_id": "w-9", "score": 0.6},
        )
        receipt = run(layout, None).receipt
        out = exports(layout)
        (sft,) = out["sft"]
        assert [m["role"] for m in sft["messages"]] == ["system", "user", "assistant"]
        assert sft["messages"][1]["content"] == "Confirm the shift"
        assert (
            sft["messages"][2]["content"]
            == '{"body":"Your Monday shift at 7am is confirmed.","to":"555-123-4567"}'
        )
        assert [(r["kind"], r["tier"]) for r in out["rag"]] == [
            ("iterate_session", "accepted"),
            ("playbook_record", "partial"),
        ]
        (pair,) = out["preference_pairs"]
        assert pair["chosen_provenance"]["sig_hash"] == sft["provenance"]["sig_hash"]
        assert pair["rejected"] == '{"body":"Shift confirmed.","to":"12345"}'
        assert receipt["rows"] == {"sft": 1, "rag": 2, "preference": 1}

    def test_pairs_per_task_are_capped(self, layout: DistillLayout, kb: Kb) -> None:
        for n in range(3):
            good = {"to": "555-123-4567", "body": f"Confirmed {n}."}
            bad = {"to": "1", "body": f"Confirmed {n}."}
            kb.event("iterate_sessions", session("Confirm", good, trace=f"a-{n}"))
            kb.event(
                "iterate_sessions",
                session("Confirm", bad, status="max_iter_exhausted", trace=f"r-{n}"),
            )
        receipt = run(layout, None, max_pairs_per_task=4).receipt
        assert receipt["rows"]["preference"] == 4
        pairs = exports(layout)["preference_pairs"]
        assert len({p["id"] for p in pairs}) == 4

    def test_a_rerun_writes_nothing(self, fixture_layout: DistillLayout) -> None:
        first = run(fixture_layout, None)
        again = export(fixture_layout, DistillSettings(), heldout=HELDOUT)
        assert first.written and (again.written, again.removed) == ([], [])
        assert again.receipt == first.receipt


class TestRefusals:
    def test_export_needs_scores(self, layout: DistillLayout, kb: Kb) -> None:
        kb.event("iterate_sessions", session("p", CLEAN_SMS))
        materialize(layout, DistillSettings())
        with pytest.raises(DistillError, match="score"):
            export(layout, DistillSettings(), heldout=HELDOUT)

    def test_a_missing_roster_is_an_error(
        self, layout: DistillLayout, kb: Kb, tmp_path: Path
    ) -> None:
        kb.event("iterate_sessions", session("p", CLEAN_SMS))
        with pytest.raises(DistillError, match="does not exist"):
            run(layout, tmp_path / "nope.parquet")

    def test_a_csv_roster_works(
        self,
        layout: DistillLayout,
        kb: Kb,
        tmp_path: Path,
        roster_rows: tuple[Path, list[dict[str, Any]]],
    ) -> None:
        csv = tmp_path / "workers.csv"
        pacsv.write_csv(pq.read_table(roster_rows[0], columns=["id", "phone", "email"]), csv)
        kb.event("iterate_sessions", session("p", {"to": roster_rows[1][0]["phone"], "body": "x"}))
        receipt = run(layout, csv).receipt
        assert receipt["quarantine_reasons"]["sft"] == {"pii_roster_phone": 1}

    def test_a_malformed_heldout_set_is_an_error(self, tmp_path: Path) -> None:
        path = tmp_path / "heldout.jsonl"
        path.write_text('{"prompt": "fine"}\n{"question": "no prompt"}\n')
        with pytest.raises(DistillError, match="line 2"):
            HeldoutSet.load(path, 3, 0.8)

    def test_the_configured_heldout_file_is_used_when_present(
        self, layout: DistillLayout, kb: Kb
    ) -> None:
        kb.event("iterate_sessions", session(HELD_OUT_PROMPT, EMAIL, kind="email"))
        (layout.root).mkdir(parents=True, exist_ok=True)
        (layout.root / "heldout_eval.jsonl").write_bytes(HELDOUT.read_bytes())
        distill = DistillSettings()
        materialize(layout, distill)
        score(layout, distill)
        receipt = export(layout, distill).receipt
        assert receipt["quarantine_reasons"]["sft"] == {"heldout_exact": 1}
