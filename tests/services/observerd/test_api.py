"""observerd's HTTP API in process (tests/support/inprocess.py): appends, group commit, paging,
every refusal. Durability across kill -9 is in test_durability.py, on a real daemon."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from lakehouse_common.config import LakehouseSettings
from services.observerd.app import create_app
from tests.support.envelope import assert_envelope
from tests.support.inprocess import daemon_settings, in_process
from tests.support.metrics import metric
from tests.support.observe import RFC3339_NANOS, file_records, read_all

MAX_BATCH = 50
MAX_EVENT = 2048
MAX_BODY = 64 * 1024
DEFAULT_LIMIT = 10
MAX_LIMIT = 100

OBSERVE_CONFIG: dict[str, Any] = {
    "max_batch_events": MAX_BATCH,
    "max_event_bytes": MAX_EVENT,
    "max_body_bytes": MAX_BODY,
    "default_limit": DEFAULT_LIMIT,
    "max_limit": MAX_LIMIT,
    # A short window makes the concurrent posts below share commits without relying on luck.
    "commit_window_ms": 20.0,
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> LakehouseSettings:
    return daemon_settings(tmp_path_factory.mktemp("observerd"), {"observe": OBSERVE_CONFIG})


@pytest.fixture(scope="module")
def od(settings: LakehouseSettings) -> Iterator[httpx.Client]:
    with in_process(create_app, settings) as client:
        yield client


def post(client: httpx.Client, stream: str, body: Any, **kwargs: Any) -> httpx.Response:
    return client.post(f"/v1/observe/{stream}", json=body, **kwargs)


def tag() -> str:
    return secrets.token_hex(4)


class TestAppend:
    def test_one_event_is_one_enveloped_line(
        self, settings: LakehouseSettings, od: httpx.Client
    ) -> None:
        before = len(file_records(settings, "chat_runs"))
        event = {"model": "ollama/qwen2.5", "tokens": 12, "ok": True, "name": "Zoë ✓", "t": tag()}
        resp = post(od, "chat_runs", {"event": event, "daemon": "chatd"})
        assert resp.status_code == 200, resp.text
        trace_id = resp.headers["x-lakehouse-trace-id"]
        assert resp.json() == {
            "stream": "chat_runs",
            "accepted": 1,
            "first_line": before,
            "total": before + 1,
        }
        last = file_records(settings, "chat_runs")[-1]
        assert list(last) == ["schema", "recorded_at", "trace_id", "daemon", "event"]
        assert last["schema"] == "observation.v1"
        assert RFC3339_NANOS.fullmatch(last["recorded_at"])
        assert (last["trace_id"], last["daemon"], last["event"]) == (trace_id, "chatd", event)

    def test_batch_events_override_the_batch_trace_and_daemon(self, od: httpx.Client) -> None:
        t = tag()
        body = {
            "trace_id": "batch-trace",
            "daemon": "matrixd",
            "events": [
                {"event": {"n": 0, "t": t}},
                {"event": {"n": 1, "t": t}, "trace_id": "own-trace"},
                {"event": {"n": 2, "t": t}, "daemon": "validatord"},
            ],
        }
        resp = post(od, "search_runs", body)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert answer["accepted"] == 3
        page = od.get(
            "/v1/observations/search_runs", params={"since": answer["first_line"], "limit": 3}
        ).json()
        got = [(r["line"], r["trace_id"], r["daemon"], r["event"]["n"]) for r in page["records"]]
        first = answer["first_line"]
        assert got == [
            (first, "batch-trace", "matrixd", 0),
            (first + 1, "own-trace", "matrixd", 1),
            (first + 2, "batch-trace", "validatord", 2),
        ]

    def test_trace_id_defaults_to_the_request_header(self, od: httpx.Client) -> None:
        resp = post(
            od,
            "search_runs",
            {"events": [{"event": {"a": 1}}, {"event": {"a": 2}}]},
            headers={"X-Lakehouse-Trace-Id": "18abbabdc2306a83-c2306aa9"},
        )
        first = resp.json()["first_line"]
        page = od.get("/v1/observations/search_runs", params={"since": first, "limit": 2}).json()
        assert [r["trace_id"] for r in page["records"]] == ["18abbabdc2306a83-c2306aa9"] * 2
        assert [r["daemon"] for r in page["records"]] == ["", ""]

    def test_recorded_at_strictly_increases_along_the_file(
        self, settings: LakehouseSettings, od: httpx.Client
    ) -> None:
        post(od, "replay_runs", {"events": [{"event": {"n": n}} for n in range(20)]})
        stamps = [r["recorded_at"] for r in file_records(settings, "replay_runs")]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


class TestGroupCommit:
    def test_concurrent_posts_share_commits_and_stay_contiguous(
        self, settings: LakehouseSettings, od: httpx.Client
    ) -> None:
        stream = "validation_results"
        appends0 = metric(od, "lakehouse_observe_appends_total", stream=stream)
        commits0 = metric(od, "lakehouse_observe_commits_total", stream=stream)
        writers, per_post = 24, 5
        barrier = threading.Barrier(writers)
        answers: dict[int, dict[str, Any]] = {}

        def writer(w: int) -> None:
            events = [{"event": {"writer": w, "n": n}} for n in range(per_post)]
            barrier.wait()
            resp = post(od, stream, {"events": events})
            assert resp.status_code == 200, resp.text
            answers[w] = resp.json()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == writers

        appends = metric(od, "lakehouse_observe_appends_total", stream=stream) - appends0
        commits = metric(od, "lakehouse_observe_commits_total", stream=stream) - commits0
        assert appends == writers
        assert 1 <= commits < writers  # one write + fsync served several requests

        records = file_records(settings, stream)
        for w, answer in answers.items():
            assert answer["accepted"] == per_post
            mine = records[answer["first_line"] : answer["first_line"] + per_post]
            assert [(r["event"]["writer"], r["event"]["n"]) for r in mine] == [
                (w, n) for n in range(per_post)
            ]
        assert len(records) == max(a["total"] for a in answers.values())


class TestRefusals:
    @pytest.mark.parametrize(
        "name", ["Search_runs", "1abc", "a-b", "x" * 65, "_kb", "a%20b", "%C3%A9t%C3%A9"]
    )
    def test_bad_stream_name_is_400(self, od: httpx.Client, name: str) -> None:
        body = assert_envelope(post(od, name, {"event": {}}), 400, "invalid_input")
        assert "stream" in body["error"]["message"]
        assert_envelope(od.get(f"/v1/observations/{name}"), 400, "invalid_input")

    def test_unconfigured_stream_is_400_unknown_stream(self, od: httpx.Client) -> None:
        body = assert_envelope(post(od, "not_configured", {"event": {}}), 400, "unknown_stream")
        assert "search_runs" in body["error"]["details"]["known"]
        assert_envelope(od.get("/v1/observations/not_configured"), 404, "not_found")

    @pytest.mark.parametrize(
        "body",
        [
            {"a": 1},  # a bare event: the wrapper is required
            {"event": [1, 2]},
            {"event": "text"},
            {"event": None},
            {"events": [1]},
            {"events": [{"a": 1}]},
            {"events": [{"event": {"a": 1}}, {"event": 5}]},  # one bad event refuses the batch
            {"events": []},
            {"event": {}, "events": [{"event": {}}]},
            {"event": {}, "trace_id": "no spaces allowed"},
            {"event": {}, "daemon": "x" * 200},
            {"event": {}, "extra": 1},
            [{"event": {}}],
        ],
    )
    def test_malformed_body_is_422_and_writes_nothing(
        self, settings: LakehouseSettings, od: httpx.Client, body: Any
    ) -> None:
        before = od.get("/v1/observations/iterate_sessions").json()["total"]
        assert_envelope(post(od, "iterate_sessions", body), 422, "invalid_request")
        assert od.get("/v1/observations/iterate_sessions").json()["total"] == before

    @pytest.mark.parametrize(
        "raw", [b"", b"not json", b'{"event": {"a": 1}', b'{"event": {"x": NaN}}']
    )
    def test_invalid_json_is_422(self, od: httpx.Client, raw: bytes) -> None:
        resp = od.post(
            "/v1/observe/iterate_sessions",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert_envelope(resp, 422, "invalid_request")

    def test_integer_beyond_64_bits_is_422_not_500(self, od: httpx.Client) -> None:
        big = b"123456789012345678901234567890"
        raw = b'{"events": [{"event": {"ok": 1}}, {"event": {"big": ' + big + b"}}]}"
        headers = {"Content-Type": "application/json"}
        resp = od.post("/v1/observe/iterate_sessions", content=raw, headers=headers)
        body = assert_envelope(resp, 422, "invalid_request")
        assert body["error"]["details"] == {"index": 1}

    def test_too_many_events_is_413(self, od: httpx.Client) -> None:
        events = [{"event": {"n": n}} for n in range(MAX_BATCH + 1)]
        resp = post(od, "search_runs", {"events": events})
        body = assert_envelope(resp, 413, "payload_too_large")
        assert body["error"]["details"]["limit"] == MAX_BATCH

    def test_too_large_event_is_413(self, od: httpx.Client) -> None:
        event = {"blob": "x" * MAX_EVENT}
        body = assert_envelope(post(od, "search_runs", {"event": event}), 413, "payload_too_large")
        assert body["error"]["details"]["limit"] == MAX_EVENT

    def test_too_large_body_is_413_declared_or_streamed(self, od: httpx.Client) -> None:
        raw = orjson.dumps({"event": {"blob": "x" * MAX_BODY}})
        headers = {"Content-Type": "application/json"}
        resp = od.post("/v1/observe/search_runs", content=raw, headers=headers)
        assert_envelope(resp, 413, "payload_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            for start in range(0, len(raw), 4096):
                yield raw[start : start + 4096]

        resp = od.post("/v1/observe/search_runs", content=chunks(), headers=headers)
        assert_envelope(resp, 413, "payload_too_large")


class TestRead:
    def test_pages_forward_with_next_until_caught_up(self, od: httpx.Client) -> None:
        stream = "playbook_records"
        base = od.get(f"/v1/observations/{stream}").json()["total"]
        t = tag()
        for chunk in range(5):
            events = [{"event": {"t": t, "n": chunk * 5 + n}} for n in range(5)]
            assert post(od, stream, {"events": events}).status_code == 200
        page = od.get(f"/v1/observations/{stream}", params={"since": base, "limit": 7}).json()
        assert (page["since"], page["count"], page["next"]) == (base, 7, base + 7)
        assert page["total"] == base + 25
        assert [r["line"] for r in page["records"]] == list(range(base, base + 7))
        mine = [r for r in read_all(od, stream, limit=7) if r["event"].get("t") == t]
        assert [r["event"]["n"] for r in mine] == list(range(25))
        # Caught up: `next` is the total, and polling with it brings only new lines.
        end = od.get(f"/v1/observations/{stream}", params={"since": base + 25}).json()
        assert (end["count"], end["next"], end["records"]) == (0, base + 25, [])
        post(od, stream, {"event": {"t": t, "n": 25}})
        new = od.get(f"/v1/observations/{stream}", params={"since": base + 25}).json()
        assert [r["event"]["n"] for r in new["records"]] == [25]

    def test_default_limit_applies(self, od: httpx.Client) -> None:
        post(od, "search_runs", {"events": [{"event": {"n": n}} for n in range(DEFAULT_LIMIT + 2)]})
        page = od.get("/v1/observations/search_runs").json()
        assert page["count"] == DEFAULT_LIMIT and page["next"] == DEFAULT_LIMIT

    def test_configured_stream_without_events_reads_empty(self, od: httpx.Client) -> None:
        page = od.get("/v1/observations/pathways").json()
        assert (page["total"], page["count"], page["next"], page["records"]) == (0, 0, 0, [])

    def test_since_beyond_the_end_is_400(self, od: httpx.Client) -> None:
        total = od.get("/v1/observations/search_runs").json()["total"]
        resp = od.get("/v1/observations/search_runs", params={"since": total + 1})
        body = assert_envelope(resp, 400, "invalid_input")
        assert body["error"]["details"] == {"since": total + 1, "total": total}

    @pytest.mark.parametrize(
        ("params", "status", "code"),
        [
            ({"limit": MAX_LIMIT + 1}, 400, "invalid_input"),
            ({"limit": 0}, 422, "invalid_request"),
            ({"since": -1}, 422, "invalid_request"),
            ({"since": "abc"}, 422, "invalid_request"),
        ],
    )
    def test_bad_paging_parameters(
        self, od: httpx.Client, params: dict[str, Any], status: int, code: str
    ) -> None:
        assert_envelope(od.get("/v1/observations/search_runs", params=params), status, code)


class TestStreams:
    def test_lists_every_configured_stream_with_counts(
        self, settings: LakehouseSettings, od: httpx.Client
    ) -> None:
        post(od, "chat_runs", {"event": {"x": 1}})
        listing = od.get("/v1/observations").json()
        by_name = {s["name"]: s for s in listing["streams"]}
        assert listing["count"] == len(listing["streams"])
        assert set(settings.observe.streams) <= set(by_name)
        path = settings.data_dir / "_kb" / "chat_runs.jsonl"
        chat = by_name["chat_runs"]
        assert chat["count"] == len(file_records(settings, "chat_runs"))
        assert (chat["bytes"], chat["configured"]) == (path.stat().st_size, True)
        assert by_name["pathways"]["count"] == 0
