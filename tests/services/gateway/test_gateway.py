"""The gateway against real daemons: routing, trace propagation, upstream failures, health, auth."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from lakehouse_common.topology import default_routes, installed_daemons
from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack

MINTED = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")
MAX_BODY = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    extra = {"gateway": {"upstream_timeout_s": 1.0}, "server": {"max_body_bytes": MAX_BODY}}
    live = LiveStack.create(tmp_path_factory.mktemp("gateway"), extra)
    with live.running("storaged", "gateway"):
        yield live


@pytest.fixture
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("gateway") as client:
        yield client


def storaged_log_lines(stack: LiveStack, trace: str) -> list[dict[str, object]]:
    time.sleep(0.2)
    return [json.loads(ln) for ln in stack.log("storaged").splitlines() if trace in ln]


class SilentServer:
    """A TCP server that accepts connections and never answers: an upstream that hangs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


class TestRouting:
    def test_status_headers_and_body_preserved(self, gw: httpx.Client) -> None:
        key = f"r-{secrets.token_hex(4)}"
        put = gw.put(f"/v1/storage/objects/lakehouse/{key}", content=b"abc")
        assert put.status_code == 200
        got = gw.get(f"/v1/storage/objects/lakehouse/{key}")
        assert got.status_code == 200
        assert got.headers["etag"] == f'"{put.json()["etag"]}"'
        assert got.content == b"abc"

    @pytest.mark.parametrize("extra", [0, 1], ids=["buffered", "streamed"])
    def test_sized_bodies_either_side_of_the_buffer_limit_round_trip(
        self, stack: LiveStack, gw: httpx.Client, extra: int
    ) -> None:
        """At most `gateway.buffer_max_bytes` a body is read whole, above it streamed: both
        ways, the bytes and the headers arrive unchanged."""
        data = os.urandom(stack.settings.gateway.buffer_max_bytes + extra)
        key = f"b-{secrets.token_hex(4)}"
        put = gw.put(f"/v1/storage/objects/lakehouse/{key}", content=data)
        assert put.status_code == 200, put.text
        assert put.json()["size"] == len(data)
        got = gw.get(f"/v1/storage/objects/lakehouse/{key}")
        assert got.status_code == 200
        assert got.headers["content-length"] == str(len(data))
        assert got.content == data

    def test_streamed_body_over_the_limit_is_413_and_reaches_no_store(
        self, gw: httpx.Client
    ) -> None:
        key = f"huge-{secrets.token_hex(4)}"

        def chunks() -> Iterator[bytes]:
            for _ in range(MAX_BODY // (1024 * 1024) + 2):
                yield b"z" * (1024 * 1024)

        resp = gw.put(f"/v1/storage/objects/lakehouse/{key}", content=chunks())
        assert_envelope(resp, 413, "payload_too_large")
        assert gw.get(f"/v1/storage/objects/lakehouse/{key}").status_code == 404

    def test_query_string_forwarded_unchanged(self, gw: httpx.Client) -> None:
        bucket = f"q-{secrets.token_hex(3)}"
        for key in ("a/1", "a/2", "b/1"):
            gw.put(f"/v1/storage/objects/{bucket}/{key}", content=b"x")
        page = gw.get(f"/v1/storage/objects/{bucket}?prefix=a%2F&limit=1").json()
        assert [o["key"] for o in page["objects"]] == ["a/1"]
        assert page["next_cursor"] == "a/1"

    def test_upstream_error_envelope_passes_through(self, gw: httpx.Client) -> None:
        resp = gw.get("/v1/storage/objects/lakehouse/absent-key")
        assert_envelope(resp, 404, "not_found")

    def test_path_no_daemon_owns_is_404_envelope(self, gw: httpx.Client) -> None:
        resp = gw.get("/v1/nowhere/x")
        body = assert_envelope(resp, 404, "not_found")
        assert "/v1/nowhere/x" in body["error"]["message"]
        assert "storage" in body["error"]["details"]["known_areas"]

    def test_path_outside_v1_is_404_envelope(self, gw: httpx.Client) -> None:
        resp = gw.get("/elsewhere")
        assert_envelope(resp, 404, "not_found")


class TestTraceIds:
    def test_incoming_id_propagates_and_is_echoed_once(
        self, stack: LiveStack, gw: httpx.Client
    ) -> None:
        trace = f"t-{secrets.token_hex(6)}"
        resp = gw.get("/v1/storage/objects/lakehouse/none", headers={TRACE_HEADER: trace})
        assert resp.headers.get_list(TRACE_HEADER) == [trace]
        assert resp.json()["trace_id"] == trace
        assert any(ln.get("event") == "request" for ln in storaged_log_lines(stack, trace))

    def test_minted_id_reaches_the_daemon(self, stack: LiveStack, gw: httpx.Client) -> None:
        resp = gw.get("/v1/storage/buckets")
        minted = resp.headers[TRACE_HEADER]
        assert MINTED.fullmatch(minted)
        assert storaged_log_lines(stack, minted), "storaged never saw the gateway's trace id"


class TestUpstreamFailures:
    @pytest.mark.parametrize("area, daemon", sorted(default_routes().items()))
    def test_every_area_routes_to_its_daemon(
        self, stack: LiveStack, gw: httpx.Client, area: str, daemon: str
    ) -> None:
        """Only storaged runs here: every other area's answer is the 502 naming its owner."""
        resp = gw.get(f"/v1/{area}")
        if daemon in stack.started:
            assert resp.status_code != 502, resp.text
        else:
            body = assert_envelope(resp, 502, "upstream_unavailable")
            assert body["error"]["details"] == {"daemon": daemon}

    def test_daemon_down_is_502_naming_it(self, gw: httpx.Client) -> None:
        resp = gw.post("/v1/query", json={"sql": "select 1"})
        body = assert_envelope(resp, 502, "upstream_unavailable")
        assert "queryd" in body["error"]["message"]
        assert body["error"]["details"] == {"daemon": "queryd"}

    def test_upstream_timeout_is_504(self, stack: LiveStack, gw: httpx.Client) -> None:
        server = SilentServer(stack.settings.ports.vectord)
        try:
            resp = gw.get("/v1/vectors/indexes")
        finally:
            server.close()
        body = assert_envelope(resp, 504, "upstream_timeout")
        assert "vectord" in body["error"]["message"]


class TestAggregateHealth:
    def test_every_installed_daemon_is_probed(self, gw: httpx.Client) -> None:
        body = gw.get("/v1/health").json()
        assert set(body["daemons"]) == {d.name for d in installed_daemons()} - {"gateway"}
        assert body["daemons"]["storaged"]["status"] == "ok"
        all_ok = all(d["status"] == "ok" for d in body["daemons"].values())
        assert body["status"] == ("ok" if all_ok else "degraded")

    def test_degraded_when_a_daemon_is_down(self, stack: LiveStack, gw: httpx.Client) -> None:
        from lakehouse_common.ops.stack import _stop_process, pid_file, read_pid

        record = read_pid(pid_file(stack.settings, "storaged"))
        assert record is not None
        _stop_process(record, grace_s=5.0)
        try:
            body = gw.get("/v1/health").json()
            assert body["status"] == "degraded"
            assert body["daemons"]["storaged"]["status"] == "down"
        finally:
            pid_file(stack.settings, "storaged").unlink()
            stack.start("storaged")
        assert gw.get("/v1/health").json()["daemons"]["storaged"]["status"] == "ok"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("gw-auth"), {"gateway": {"auth_token": "tok-123456"}}
    )
    with live.running("storaged", "gateway"):
        yield live


class TestBearerAuth:
    def test_health_is_open(self, secured: LiveStack) -> None:
        with secured.client("gateway") as c:
            assert c.get("/health").status_code == 200

    @pytest.mark.parametrize("path", ["/v1/health", "/v1/storage/buckets", "/metrics"])
    def test_missing_token_is_401(self, secured: LiveStack, path: str) -> None:
        with secured.client("gateway") as c:
            resp = c.get(path)
        assert_envelope(resp, 401, "unauthorized")
        assert resp.headers["www-authenticate"].startswith("Bearer")

    def test_wrong_token_is_401(self, secured: LiveStack) -> None:
        with secured.client("gateway", headers={"Authorization": "Bearer nope"}) as c:
            assert c.get("/v1/storage/buckets").status_code == 401

    def test_right_token_passes_and_is_not_forwarded(self, secured: LiveStack) -> None:
        with secured.client("gateway", headers={"Authorization": "Bearer tok-123456"}) as c:
            assert c.get("/v1/storage/buckets").status_code == 200
            assert c.get("/v1/health").json()["daemons"]["storaged"]["status"] == "ok"


def test_concurrent_requests_through_gateway(stack: LiveStack) -> None:
    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=stack.url("gateway")) as c:
            rs = await asyncio.gather(*(c.get("/v1/storage/buckets") for _ in range(50)))
        return [r.status_code for r in rs]

    assert set(asyncio.run(run())) == {200}
