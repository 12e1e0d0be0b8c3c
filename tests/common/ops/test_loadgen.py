"""The load drivers (SPEC §9 "Load tools", issue 9) against a real tiny HTTP server on loopback.

`drive` (benches): exact request counts, errors abort. `generate_load` and `lakehouse loadgen`
(operators): bounded by time and count, errors counted per status and per transport failure,
keep-alive connections, a body mix, loopback only.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from typer.testing import CliRunner

from lakehouse_common.cli import app
from lakehouse_common.ops.loadgen import drive, generate_load, percentile
from lakehouse_common.ops.stack import free_port

NOT_LOOPBACK = [
    "http://10.0.0.1/x",
    "http://example.com/",
    "http://192.168.1.2/",
    "ftp://127.0.0.1/",
]


@dataclass
class TinyServer:
    """An aiohttp server on a loopback port, in its own thread and event loop.

    `/ok` answers 200; `/status/{code}` that status; `/cycle` 200, 404, 500, 503 in turn;
    `/drop` closes the connection without an answer; `/slow` answers after 5 s (or at
    teardown); `/echo` 200 and remembers the body. `peers` counts requests per client
    (address, port): one entry per TCP connection.
    """

    base: str = ""
    peers: Counter[tuple[str, int]] = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    cycle: Iterator[int] = field(default_factory=lambda: itertools.cycle((200, 404, 500, 503)))
    release: asyncio.Event | None = None  # set at teardown: ends pending /slow handlers

    def url(self, path: str) -> str:
        return self.base + path

    def reset(self) -> None:
        self.peers.clear()
        self.bodies.clear()

    def app(self) -> web.Application:
        async def track(request: web.Request) -> None:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if peer:
                self.peers[(peer[0], peer[1])] += 1

        async def ok(request: web.Request) -> web.Response:
            await track(request)
            return web.json_response({"ok": True})

        async def status(request: web.Request) -> web.Response:
            await track(request)
            return web.json_response({"status": "x"}, status=int(request.match_info["code"]))

        async def cycle(request: web.Request) -> web.Response:
            await track(request)
            return web.json_response({}, status=next(self.cycle))

        async def drop(request: web.Request) -> web.Response:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # no answer on a closed connection

        async def slow(request: web.Request) -> web.Response:
            self.release = self.release or asyncio.Event()
            try:
                await asyncio.wait_for(self.release.wait(), 5)
            except TimeoutError:
                pass
            return web.json_response({})

        async def echo(request: web.Request) -> web.Response:
            await track(request)
            self.bodies.append(await request.read())
            return web.json_response({})

        application = web.Application()
        application.router.add_route("*", "/ok", ok)
        application.router.add_route("*", "/status/{code}", status)
        application.router.add_get("/cycle", cycle)
        application.router.add_get("/drop", drop)
        application.router.add_get("/slow", slow)
        application.router.add_post("/echo", echo)
        return application


@pytest.fixture(scope="module")
def server() -> Iterator[TinyServer]:
    tiny = TinyServer()
    port = free_port()
    tiny.base = f"http://127.0.0.1:{port}"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(tiny.app(), handle_signals=False)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "tiny server did not start"
    yield tiny
    if tiny.release is not None:
        loop.call_soon_threadsafe(tiny.release.set)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture
def tiny(server: TinyServer) -> TinyServer:
    server.reset()
    return server


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert percentile([3.0], 99) == 3.0


class TestDrive:
    def test_sends_exactly_the_requested_count(self, tiny: TinyServer) -> None:
        run = drive(tiny.url("/ok"), requests=57, concurrency=4)
        assert run.requests == len(run.latencies_s) == 57
        assert sum(tiny.peers.values()) == 57
        assert run.rps > 0
        assert run.percentile_ms(50) <= run.percentile_ms(99)

    def test_error_answers_abort_the_run(self, tiny: TinyServer) -> None:
        with pytest.raises(RuntimeError, match="HTTP 404"):
            drive(tiny.url("/status/404"), requests=3)

    @pytest.mark.parametrize("url", NOT_LOOPBACK)
    def test_refuses_anything_but_loopback(self, url: str) -> None:
        with pytest.raises(ValueError, match="loopback"):
            drive(url, requests=1)


class TestGenerateLoad:
    def test_count_bound_and_keep_alive(self, tiny: TinyServer) -> None:
        run = asyncio.run(
            generate_load(tiny.url("/ok"), concurrency=4, duration_s=60, max_requests=200)
        )
        assert run.stopped_by == "requests"
        assert run.requests == run.ok == 200
        assert run.errors == 0 and run.statuses == {200: 200}
        # Keep-alive: 200 requests over at most 4 pooled connections.
        assert sum(tiny.peers.values()) == 200
        assert len(tiny.peers) <= 4
        lat = run.latency_ms()
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]

    def test_error_statuses_are_counted_and_the_run_goes_on(self, tiny: TinyServer) -> None:
        run = asyncio.run(
            generate_load(tiny.url("/cycle"), concurrency=1, duration_s=60, max_requests=40)
        )
        assert run.statuses == {200: 10, 404: 10, 500: 10, 503: 10}
        assert (run.ok, run.non_2xx, run.errors) == (10, 30, 30)
        assert len(run.latencies_s) == 40
        summary = run.to_dict()
        assert summary["statuses"] == {"200": 10, "404": 10, "500": 10, "503": 10}
        assert summary["errors"] == 30 and summary["requests"] == 40

    def test_refused_connections_are_transport_errors(self) -> None:
        closed = f"http://127.0.0.1:{free_port()}/nothing-listens"
        run = asyncio.run(generate_load(closed, concurrency=2, duration_s=60, max_requests=10))
        assert run.transport_errors == {"connect": 10}
        assert run.statuses == {} and run.errors == 10 and run.latencies_s == []

    def test_dropped_connections_are_transport_errors(self, tiny: TinyServer) -> None:
        run = asyncio.run(
            generate_load(tiny.url("/drop"), concurrency=2, duration_s=60, max_requests=6)
        )
        assert run.requests == 6
        assert set(run.transport_errors) == {"disconnected"}

    def test_requests_that_outlive_their_timeout_are_counted(self, tiny: TinyServer) -> None:
        run = asyncio.run(
            generate_load(
                tiny.url("/slow"), concurrency=2, duration_s=60, max_requests=2, timeout_s=0.2
            )
        )
        assert run.transport_errors == {"timeout": 2}

    def test_duration_bound_stops_the_run(self, tiny: TinyServer) -> None:
        run = asyncio.run(generate_load(tiny.url("/ok"), concurrency=3, duration_s=0.5))
        assert run.stopped_by == "duration"
        assert run.elapsed_s >= 0.5
        assert run.requests == run.ok > 0
        assert sum(tiny.peers.values()) == run.requests

    def test_bodies_rotate(self, tiny: TinyServer) -> None:
        bodies = [b'{"q":1}', b'{"q":2}', b'{"q":3}']
        run = asyncio.run(
            generate_load(
                tiny.url("/echo"),
                concurrency=1,
                duration_s=60,
                max_requests=7,
                method="POST",
                bodies=bodies,
            )
        )
        assert run.ok == 7
        assert tiny.bodies == [bodies[i % 3] for i in range(7)]

    @pytest.mark.parametrize("url", NOT_LOOPBACK)
    def test_refuses_anything_but_loopback(self, url: str) -> None:
        with pytest.raises(ValueError, match="loopback"):
            asyncio.run(generate_load(url, concurrency=1, duration_s=1))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"concurrency": 0, "duration_s": 1}, "concurrency"),
            ({"concurrency": 1, "duration_s": 0}, "duration"),
            ({"concurrency": 1, "duration_s": 1, "max_requests": 0}, "request bound"),
        ],
    )
    def test_refuses_unbounded_or_empty_runs(self, kwargs: dict[str, int], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            asyncio.run(generate_load("http://127.0.0.1:9/x", **kwargs))  # type: ignore[arg-type]


class TestLoadgenCommand:
    def test_prints_a_table_and_a_json_summary(self, tiny: TinyServer, tmp_path: Path) -> None:
        mix = tmp_path / "mix.jsonl"
        mix.write_text('{"q": "a"}\n\n{"q": "b"}\n')
        result = CliRunner().invoke(
            app,
            ["loadgen", "--url", tiny.url("/echo"), "-c", "2", "-d", "30", "-n", "6"]
            + ["--body-file", str(mix), "-H", "X-Test: yes"],
        )
        assert result.exit_code == 0, result.output
        assert "requests       6 in" in result.stdout
        assert "status         200: 6" in result.stdout
        summary = orjson.loads(result.stderr.strip().splitlines()[-1])
        assert summary["method"] == "POST"
        assert summary["requests"] == summary["ok"] == 6
        assert summary["errors"] == 0 and summary["stopped_by"] == "requests"
        assert set(summary["latency_ms"]) == {"p50", "p95", "p99", "max", "mean"}
        assert sorted(tiny.bodies) == sorted([b'{"q": "a"}', b'{"q": "b"}'] * 3)

    def test_a_plain_body_file_is_sent_byte_for_byte(
        self, tiny: TinyServer, tmp_path: Path
    ) -> None:
        body = tmp_path / "body.json"
        body.write_bytes(b'{\n  "pretty": true\n}\n')
        result = CliRunner().invoke(
            app, ["loadgen", "--url", tiny.url("/echo"), "-n", "2", "--body-file", str(body)]
        )
        assert result.exit_code == 0, result.output
        assert tiny.bodies == [body.read_bytes()] * 2

    def test_exits_1_when_any_request_failed(self, tiny: TinyServer) -> None:
        result = CliRunner().invoke(
            app, ["loadgen", "--url", tiny.url("/cycle"), "-c", "1", "-n", "4"]
        )
        assert result.exit_code == 1
        summary = orjson.loads(result.stderr.strip().splitlines()[-1])
        assert summary["errors"] == 3

    @pytest.mark.parametrize("url", NOT_LOOPBACK)
    def test_refuses_anything_but_loopback(self, url: str) -> None:
        result = CliRunner().invoke(app, ["loadgen", "--url", url, "-n", "1"])
        assert result.exit_code == 2
        assert "loopback" in result.stderr

    def test_refuses_a_missing_body_file(self, tiny: TinyServer, tmp_path: Path) -> None:
        missing = tmp_path / "nope.json"
        result = CliRunner().invoke(
            app, ["loadgen", "--url", tiny.url("/echo"), "--body-file", str(missing)]
        )
        assert result.exit_code == 2
        assert "cannot read" in result.stderr

    def test_refuses_a_malformed_header(self, tiny: TinyServer) -> None:
        result = CliRunner().invoke(
            app, ["loadgen", "--url", tiny.url("/ok"), "-n", "1", "-H", "no-colon"]
        )
        assert result.exit_code == 2
        assert "Name: value" in result.stderr
