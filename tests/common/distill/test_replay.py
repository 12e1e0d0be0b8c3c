"""replay's choice of tasks (the live replay is in test_e2e)."""

from __future__ import annotations

from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.replay import recorded_tasks
from tests.support.distill import Kb, session

SMS = {"to": "555-123-4567", "body": "ok"}


def test_the_last_distinct_tasks_oldest_first(layout: DistillLayout, kb: Kb) -> None:
    kb.event("iterate_sessions", session("Confirm A", SMS, trace="a-1"), trace_id="a-1")
    kb.event("iterate_sessions", session("Confirm B", SMS, trace="b-1"), trace_id="b-1")
    kb.event(
        "iterate_sessions",
        session("confirm a!", SMS, status="max_iter_exhausted", trace="a-2"),
        trace_id="a-2",
    )
    kb.event(
        "iterate_sessions", session("Confirm C", SMS, kind="email", trace="c-1"), trace_id="c-1"
    )
    kb.event("iterate_sessions", session(None, None, trace="old"), trace_id="old")
    kb.append("iterate_sessions", b"not json")
    tasks = recorded_tasks(layout, 2)
    assert [(t.kind, t.prompt) for t in tasks] == [("sms", "confirm a!"), ("email", "Confirm C")]
    first = tasks[0].original
    assert (first.session_id, first.status, first.line_offset) == ("a-2", "max_iter_exhausted", 2)
    assert first.source == "_kb/iterate_sessions.jsonl"
    assert [t.prompt for t in recorded_tasks(layout, 10)] == [
        "Confirm B",
        "confirm a!",
        "Confirm C",
    ]


def test_no_sessions_no_tasks(layout: DistillLayout) -> None:
    assert recorded_tasks(layout, 5) == []
