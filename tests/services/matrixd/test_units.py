"""In-process units of matrixd: role/query normalisation, playbook ids, the boost and re-rank
math, and the `sql_filter` check (no daemons)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from lakehouse_common.contracts.matrix import playbook_id
from lakehouse_common.contracts.vectors import Hit, metadata_matches
from lakehouse_common.errors import InvalidInput
from lakehouse_common.text import normalise
from services.matrixd.playbooks import Approval, boost_factor, strongest_per_answer
from services.matrixd.ranking import Candidate, cosine_distances, rerank
from services.matrixd.sql_filter import check_sql_filter, evidence_sql


def hit(id: str, distance: float, **metadata: Any) -> Hit:
    return Hit(id, distance, metadata)


def recording(pid: str, query_distance: float, answer: str, score: float) -> Hit:
    return hit(pid, query_distance, answer_id=answer, score=score)


class TestNormalise:
    @pytest.mark.parametrize(
        "text", ["Forklift Operator", "  forklift   OPERATOR ", "FORKLIFT\tOperator\n"]
    )
    def test_case_and_whitespace_do_not_matter(self, text: str) -> None:
        assert normalise(text) == "forklift operator"

    def test_playbook_id_is_deterministic_from_normalised_inputs(self) -> None:
        a = playbook_id("Need 3 Forklift Operators", "Forklift Operator", "w-1")
        b = playbook_id("  need 3 forklift   operators ", "FORKLIFT operator", "w-1")
        key = "need 3 forklift operators\x1fforklift operator\x1fw-1\x1fworkers"
        assert a == b == "pb-" + hashlib.sha256(key.encode()).hexdigest()[:16]
        assert playbook_id("Need 3 Forklift Operators", "Forklift Operator", "w-2") != a
        assert playbook_id("Need 3 Forklift Operators", "Welder", "w-1") != a
        assert playbook_id("Need 3 Forklift Operators", "Forklift Operator", "w-1", "ix") != a


class TestStrongestPerAnswer:
    def test_strongest_close_recording_applies_once(self) -> None:
        best = strongest_per_answer(
            [
                recording("pb-1", 0.05, "w-1", 0.4),
                recording("pb-2", 0.10, "w-1", 1.0),
                recording("pb-3", 0.01, "w-2", 0.7),
            ],
            max_distance=0.15,
        )
        assert best["w-1"] == Approval("w-1", 1.0, "pb-2", 0.10)
        assert best["w-1"].factor == 0.5
        assert best["w-2"].factor == pytest.approx(0.65)

    def test_far_recordings_and_excluded_answers_do_not_apply(self) -> None:
        best = strongest_per_answer(
            [recording("pb-1", 0.16, "w-1", 1.0), recording("pb-2", 0.0, "w-2", 1.0)],
            max_distance=0.15,
            excluded=["w-2"],
        )
        assert best == {}

    def test_malformed_records_are_skipped(self) -> None:
        best = strongest_per_answer(
            [
                hit("pb-1", 0.0, answer_id="w-1", score=True),
                hit("pb-2", 0.0, answer_id="w-1", score=1.5),
                hit("pb-3", 0.0, score=1.0),
            ],
            max_distance=0.15,
        )
        assert best == {}

    @pytest.mark.parametrize(("score", "factor"), [(1.0, 0.5), (0.4, 0.8), (0.0, 1.0)])
    def test_boost_factor(self, score: float, factor: float) -> None:
        assert boost_factor(score) == pytest.approx(factor, abs=1e-12)


class TestRerank:
    organic = [hit(f"w-{i}", 0.1 * i) for i in range(1, 6)]  # w-1 0.1 … w-5 0.5

    def test_boost_multiplies_and_reorders(self) -> None:
        approvals = {"w-5": Approval("w-5", 1.0, "pb", 0.0)}
        ranked = rerank(self.organic, [], approvals, 5)
        assert [r.id for r in ranked] == ["w-1", "w-2", "w-5", "w-3", "w-4"]
        assert ranked[2].distance == pytest.approx(0.25, abs=1e-12)
        assert ranked[2].boosted and not ranked[2].injected

    def test_injected_answer_displaces_the_worst_organic_even_when_worse(self) -> None:
        approvals = {"w-9": Approval("w-9", 0.0, "pb", 0.0)}
        ranked = rerank(self.organic, [Candidate("w-9", 0.9, {})], approvals, 5)
        assert [r.id for r in ranked] == ["w-1", "w-2", "w-3", "w-4", "w-9"]
        assert ranked[-1].injected and ranked[-1].boosted
        assert ranked[-1].distance == pytest.approx(0.9)

    def test_more_injected_than_k_keeps_the_best_k(self) -> None:
        approvals = {f"x-{i}": Approval(f"x-{i}", 1.0, "pb", 0.0) for i in range(3)}
        injected = [Candidate(f"x-{i}", 0.6 + 0.1 * i, {}) for i in range(3)]
        ranked = rerank(self.organic, injected, approvals, 2)
        assert [r.id for r in ranked] == ["x-0", "x-1"]

    def test_cosine_distances_in_float64(self) -> None:
        q = np.array([3.0, 4.0], dtype=np.float32)
        d = cosine_distances(q, [[3.0, 4.0], [4.0, -3.0], [-3.0, -4.0]])
        assert d.dtype == np.float64
        assert d.tolist() == pytest.approx([0.0, 1.0, 2.0], abs=1e-12)

    def test_metadata_matches_with_json_equality(self) -> None:
        meta = {"state": "IL", "available": True, "n": 1}
        assert metadata_matches(meta, None)
        assert metadata_matches(meta, {"state": "IL", "n": 1.0})
        assert not metadata_matches(meta, {"available": 1})
        assert not metadata_matches(meta, {"city": "Aurora"})


class TestSqlFilter:
    @pytest.mark.parametrize(
        "text",
        [
            "available AND list_contains(certifications, 'OSHA-10')",
            "available AND 'OSHA-10' = ANY(certifications)",
            "state = 'IL' AND city = 'O''Fallon'",
            "name = 'a;b -- c /* d */ (('",
            "(SELECT count(*) FROM workers) > 0",
        ],
    )
    def test_accepts_one_expression(self, text: str) -> None:
        assert check_sql_filter(f"  {text} ", 2000) == text

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("available; DROP TABLE workers", "';'"),
            ("available -- the rest", "comments"),
            ("available /* x */", "comments"),
            ("1=1) OR (1=1", "unbalanced ')'"),
            ("available) UNION SELECT * FROM workers WHERE (true", "unbalanced ')'"),
            ("E'\\'' ) OR (1=1", "unbalanced ')'"),
            ("(available", "unbalanced '('"),
            ("id = $1", "parameters"),
            ("id = ?", "parameters"),
            ("a = 1, b = 2", "one expression"),
            ("available ORDER BY 1", "syntax error"),
            ("x = ", "syntax error"),
            ("", "empty"),
            ("x" * 2001, "longer"),
        ],
    )
    def test_refuses_what_could_leave_the_where_clause(self, text: str, reason: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            check_sql_filter(text, 2000)
        assert reason in caught.value.message

    def test_evidence_sql_wraps_the_condition(self) -> None:
        sql = evidence_sql("workers", "available")
        assert sql.endswith("AND (\navailable\n)")
        assert evidence_sql("workers", None).startswith('SELECT * FROM "workers" WHERE "id" IN')
