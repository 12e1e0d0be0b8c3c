"""The `Observer` reporter against a real observerd — and against none at all."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import (
    BAD_STREAM,
    CLOSED,
    QUEUE_FULL,
    REJECTED,
    TOO_LARGE,
    UNREACHABLE,
    UNSERIALIZABLE,
    Observer,
)
from lakehouse_common.ops.stack import free_port
from lakehouse_common.tracing import current_trace_id
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("observer"))
    with live.running("observerd"):
        yield live


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with HttpClient() as client:
        yield client


def tuned(settings: LakehouseSettings, **observe: Any) -> LakehouseSettings:
    """`settings` with fast retries (and any other `[observe]` changes)."""
    values = {"reporter_retry_backoff_s": 0.01, **observe}
    return settings.model_copy(update={"observe": settings.observe.model_copy(update=values)})


def stored(stack: LiveStack, stream: str, mark: str) -> list[dict[str, Any]]:
    with stack.client("observerd") as od:
        records = []
        since = 0
        while True:
            page = od.get(f"/v1/observations/{stream}", params={"since": since}).json()
            records += page["records"]
            if not page["count"]:
                break
            since = page["next"]
    return [r for r in records if r["event"].get("mark") == mark]


def settings_event_limit(stack: LiveStack) -> int:
    return stack.settings.observe.max_event_bytes


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class TestReporting:
    async def test_reports_arrive_batched_per_stream(
        self, stack: LiveStack, http: HttpClient
    ) -> None:
        mark = secrets.token_hex(4)
        registry = CollectorRegistry()
        observer = Observer(tuned(stack.settings), "matrixd", http, registry=registry)
        await observer.start()
        try:
            for n in range(30):
                observer.report("search_runs", {"mark": mark, "n": n}, trace_id=f"t-{n}")
            for n in range(5):
                observer.report("playbook_records", {"mark": mark, "n": n})
            assert await observer.flush(10)
        finally:
            await observer.close()
        assert (observer.sent, observer.dropped) == (35, 0)
        assert sample(registry, "lakehouse_observer_events_sent_total", stream="search_runs") == 30
        runs = stored(stack, "search_runs", mark)
        assert [(r["event"]["n"], r["trace_id"], r["daemon"]) for r in runs] == [
            (n, f"t-{n}", "matrixd") for n in range(30)
        ]
        assert [r["event"]["n"] for r in stored(stack, "playbook_records", mark)] == list(range(5))

    async def test_trace_id_is_the_current_requests_at_report_time(
        self, stack: LiveStack, http: HttpClient
    ) -> None:
        mark = secrets.token_hex(4)
        observer = Observer(tuned(stack.settings), "chatd", http)
        await observer.start()
        token = current_trace_id.set("18abbabdc2306a83-c2306aa9")
        try:
            observer.report("chat_runs", {"mark": mark})
        finally:
            current_trace_id.reset(token)
        observer.report("chat_runs", {"mark": mark, "later": True})  # no request: no trace id
        await observer.close()
        assert [r["trace_id"] for r in stored(stack, "chat_runs", mark)] == [
            "18abbabdc2306a83-c2306aa9",
            "",
        ]

    async def test_reports_from_worker_threads_arrive(
        self, stack: LiveStack, http: HttpClient
    ) -> None:
        mark = secrets.token_hex(4)
        observer = Observer(tuned(stack.settings), "validatord", http)
        await observer.start()

        def work(n: int) -> None:
            observer.report("validation_results", {"mark": mark, "n": n})

        await asyncio.gather(*(asyncio.to_thread(work, n) for n in range(8)))
        await observer.close()
        assert observer.sent == 8
        got = sorted(r["event"]["n"] for r in stored(stack, "validation_results", mark))
        assert got == list(range(8))

    async def test_event_is_captured_when_reported(
        self, stack: LiveStack, http: HttpClient
    ) -> None:
        mark = secrets.token_hex(4)
        observer = Observer(tuned(stack.settings), "matrixd", http)
        event: dict[str, Any] = {"mark": mark, "state": "before"}
        observer.report("search_runs", event)  # queued before start: sent once started
        event["state"] = "after"
        await observer.start()
        await observer.close()
        assert [r["event"]["state"] for r in stored(stack, "search_runs", mark)] == ["before"]


class TestNeverBlocksNeverRaises:
    async def test_observerd_down_drops_and_counts(self, http: HttpClient) -> None:
        settings = tuned(LakehouseSettings(), reporter_retries=2)
        registry = CollectorRegistry()
        nowhere = f"http://127.0.0.1:{free_port()}"
        observer = Observer(settings, "matrixd", http, registry=registry, base_url=nowhere)
        await observer.start()
        for n in range(50):
            observer.report("search_runs", {"n": n})  # returns at once, raises nothing
        # report() only queued: nothing was attempted on the caller's time.
        assert observer.queued == 50 and observer.sent == 0 and observer.dropped == 0
        assert await observer.flush(30)
        assert (observer.sent, observer.dropped) == (0, 50)
        assert observer.dropped_by_reason == {UNREACHABLE: 50}
        dropped = sample(
            registry,
            "lakehouse_observer_events_dropped_total",
            stream="search_runs",
            reason=UNREACHABLE,
        )
        assert dropped == 50
        await observer.close()

    async def test_full_queue_drops_the_newest(self, stack: LiveStack, http: HttpClient) -> None:
        mark = secrets.token_hex(4)
        observer = Observer(tuned(stack.settings, reporter_queue_size=5), "matrixd", http)
        for n in range(8):  # not started: nothing drains the queue
            observer.report("search_runs", {"mark": mark, "n": n})
        assert observer.dropped_by_reason == {QUEUE_FULL: 3}
        await observer.start()
        await observer.close()
        assert observer.sent == 5
        assert [r["event"]["n"] for r in stored(stack, "search_runs", mark)] == list(range(5))

    async def test_bad_reports_are_dropped_not_raised(
        self, stack: LiveStack, http: HttpClient
    ) -> None:
        observer = Observer(tuned(stack.settings), "matrixd", http)
        await observer.start()
        observer.report("Not A Stream", {"a": 1})
        observer.report("search_runs", {"a": object()})
        observer.report("search_runs", {"big": 2**70})
        observer.report("search_runs", "not a dict")  # type: ignore[arg-type]
        observer.report("search_runs", {"blob": "x" * settings_event_limit(stack)})
        observer.report("not_configured", {"a": 1})  # well-formed: observerd refuses it
        await observer.flush(10)
        await observer.close()
        observer.report("search_runs", {"a": 1})  # after close
        assert observer.sent == 0
        assert observer.dropped_by_reason == {
            BAD_STREAM: 1,
            UNSERIALIZABLE: 3,
            TOO_LARGE: 1,
            REJECTED: 1,
            CLOSED: 1,
        }

    async def test_close_waits_a_bounded_time_then_drops_the_rest(self, http: HttpClient) -> None:
        settings = tuned(
            LakehouseSettings(),
            reporter_retries=1000,
            reporter_retry_backoff_s=0.05,
            reporter_close_timeout_s=0.2,
        )
        nowhere = f"http://127.0.0.1:{free_port()}"
        observer = Observer(settings, "matrixd", http, base_url=nowhere)
        await observer.start()
        for n in range(10):
            observer.report("search_runs", {"n": n})
        await observer.close()  # returns although the batch would retry for a long time
        assert observer.sent == 0
        assert observer.dropped_by_reason == {CLOSED: 10}

    async def test_disabled_reporter_does_nothing(self, http: HttpClient) -> None:
        settings = tuned(LakehouseSettings(), reporter_enabled=False)
        observer = Observer(settings, "matrixd", http)
        await observer.start()
        observer.report("search_runs", {"n": 1})
        assert observer.queued == 0
        await observer.close()
        assert (observer.sent, observer.dropped) == (0, 0)
