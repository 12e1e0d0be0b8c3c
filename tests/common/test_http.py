"""The pooled client and storaged's typed client against a real storaged daemon."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from lakehouse_common import http as http_module
from lakehouse_common.config import ClientSettings, ServerSettings
from lakehouse_common.contracts.storage import StorageClient
from lakehouse_common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from lakehouse_common.http import HttpClient, bearer, upstream_failures
from lakehouse_common.ops.stack import free_port
from lakehouse_common.tracing import current_trace_id
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("http"))
    with live.running("storaged"):
        yield live


async def test_typed_client_round_trip_and_typed_errors(stack: LiveStack) -> None:
    async with HttpClient() as http:
        storage = StorageClient(http.client_for("storaged", stack.url("storaged")))
        key = f"c/{secrets.token_hex(4)}"
        info = await storage.put_object("lakehouse", key, b"data", create_only=True)
        assert info.size == 4
        assert await storage.get_object("lakehouse", key) == b"data"
        with pytest.raises(Conflict):
            await storage.put_object("lakehouse", key, b"again", create_only=True)
        page = await storage.list_objects("lakehouse", prefix="c/")
        assert key in [o.key for o in page.objects]
        await storage.delete_object("lakehouse", key)
        with pytest.raises(NotFound) as missing:
            await storage.get_object("lakehouse", key)
        assert missing.value.trace_id  # the daemon's trace id survives the hop
        with pytest.raises(InvalidInput):
            await storage.put_object("Bad_Bucket", "k", b"x")


async def test_trace_id_is_forwarded(stack: LiveStack) -> None:
    trace = f"fwd-{secrets.token_hex(6)}"
    token = current_trace_id.set(trace)
    try:
        async with HttpClient() as http:
            client = http.client_for("storaged", stack.url("storaged"))
            await client.call_json("GET", "/v1/storage/buckets")
    finally:
        current_trace_id.reset(token)
    time.sleep(0.2)
    lines = [json.loads(ln) for ln in stack.log("storaged").splitlines() if trace in ln]
    assert any(ln["event"] == "request" and ln["trace_id"] == trace for ln in lines)


async def test_unreachable_daemon_raises_upstream_unavailable_naming_it() -> None:
    settings = ClientSettings(connect_retries=1, connect_timeout_s=0.5)
    async with HttpClient(settings) as http:
        client = http.client_for("catalogd", f"http://127.0.0.1:{free_port()}")
        with pytest.raises(UpstreamUnavailable, match="catalogd is unreachable"):
            await client.call_json("GET", "/v1/catalog/datasets")


async def test_unreachable_daemon_is_retried_then_named_with_its_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []

    async def no_wait(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr(http_module.asyncio, "sleep", no_wait)
    base_url = f"http://127.0.0.1:{free_port()}"
    async with HttpClient(ClientSettings(connect_retries=2, connect_timeout_s=0.5)) as http:
        client = http.client_for("catalogd", base_url)
        with pytest.raises(UpstreamUnavailable) as failure:
            await client.request("GET", "/v1/catalog/datasets")
        assert len(sleeps) == 2  # GET is idempotent: 1 + connect_retries attempts
        with pytest.raises(UpstreamUnavailable):
            await client.request("POST", "/v1/catalog/datasets", json={})
        assert len(sleeps) == 2  # POST is never retried
    assert str(failure.value).startswith(f"catalogd is unreachable at {base_url}: ")
    assert failure.value.details == {"daemon": "catalogd"}


async def test_silent_daemon_raises_upstream_timeout_naming_the_call() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        async with HttpClient() as http:
            client = http.client_for("queryd", f"http://127.0.0.1:{port}")
            with pytest.raises(UpstreamTimeout) as failure:
                await client.request("GET", "/v1/query/x", timeout_s=0.2)
    assert str(failure.value) == "queryd did not answer GET /v1/query/x in time"
    assert failure.value.details == {"daemon": "queryd"}


class _OurOwnRefusal(Exception):
    pass


class TestUpstreamFailures:
    """The one aiohttp → typed-error mapping (ServiceClient and the gateway share it)."""

    @pytest.mark.parametrize("exc", [TimeoutError(), aiohttp.ServerTimeoutError("read")])
    def test_timeout_is_upstream_timeout(self, exc: Exception) -> None:
        with pytest.raises(UpstreamTimeout, match="^vectord too slow$") as failure:
            with upstream_failures(
                "vectord", unreachable=str, timed_out="vectord too slow", failed=str
            ):
                raise exc
        assert failure.value.details == {"daemon": "vectord"}
        assert failure.value.__cause__ is exc

    def test_other_client_error_is_upstream_unavailable(self) -> None:
        with pytest.raises(UpstreamUnavailable) as failure:
            with upstream_failures(
                "vectord",
                unreachable=str,
                timed_out="",
                failed=lambda exc: f"vectord failed: {type(exc).__name__}: {exc}",
            ):
                raise aiohttp.ServerDisconnectedError()
        assert str(failure.value) == "vectord failed: ServerDisconnectedError: Server disconnected"
        assert failure.value.details == {"daemon": "vectord"}

    def test_passthrough_is_not_mapped_even_when_aiohttp_wraps_it(self) -> None:
        refusal = _OurOwnRefusal("413")
        with pytest.raises(_OurOwnRefusal) as direct:
            with upstream_failures(
                "gateway", unreachable=str, timed_out="", failed=str, passthrough=(_OurOwnRefusal,)
            ):
                raise refusal
        assert direct.value is refusal
        with pytest.raises(_OurOwnRefusal) as wrapped:
            with upstream_failures(
                "gateway", unreachable=str, timed_out="", failed=str, passthrough=(_OurOwnRefusal,)
            ):
                raise aiohttp.ClientPayloadError("body") from refusal
        assert wrapped.value is refusal

    def test_without_passthrough_a_wrapped_error_is_upstream_unavailable(self) -> None:
        with pytest.raises(UpstreamUnavailable):
            with upstream_failures("gateway", unreachable=str, timed_out="", failed=str):
                raise aiohttp.ClientPayloadError("body") from _OurOwnRefusal("413")

    def test_anything_else_passes_unchanged(self) -> None:
        with pytest.raises(ValueError, match="not ours"):
            with upstream_failures("vectord", unreachable=str, timed_out="", failed=str):
                raise ValueError("not ours")


def _get_health(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: lakehouse\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed the connection"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed the connection mid-answer"
        body += chunk
    return head.split(b"\r\n", 1)[0]


def test_idle_connection_outlives_the_client_pool_keep_alive(stack: LiveStack) -> None:
    """Daemons keep idle connections open `server.keep_alive_s` (30 s), longer than the
    client pool keeps them (`client.keepalive_s`, 15 s). With uvicorn's own 5 s a pooled
    connection reused after 5–15 s idle could be closed under the caller: the gateway answered
    502 that way between benchmark runs."""
    assert ClientSettings().keepalive_s < ServerSettings().keep_alive_s
    host, port = stack.url("storaged").removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        assert _get_health(sock) == b"HTTP/1.1 200 OK"
        time.sleep(6)  # past uvicorn's default keep-alive of 5 s
        assert _get_health(sock) == b"HTTP/1.1 200 OK"


class TestDefaultHeaders:
    """`HttpClient(headers=…)` (issue 15): the tooling's bearer token rides on every call."""

    @staticmethod
    async def _echo_server() -> TestServer:
        async def echo(request: web.Request) -> web.Response:
            return web.json_response({"authorization": request.headers.get("Authorization")})

        app = web.Application()
        app.router.add_get("/echo", echo)
        server = TestServer(app)
        await server.start_server()
        return server

    async def test_every_call_carries_the_default_headers(self) -> None:
        server = await self._echo_server()
        try:
            async with HttpClient(headers=bearer("s3cret")) as http:
                client = http.client_for("echo", str(server.make_url("")))
                assert await client.call_json("GET", "/echo") == {"authorization": "Bearer s3cret"}
                # A call's own header wins over the default.
                _, _, body = await client.request(
                    "GET", "/echo", headers={"Authorization": "Bearer other"}
                )
                assert json.loads(body) == {"authorization": "Bearer other"}
        finally:
            await server.close()

    async def test_no_token_sends_no_authorization(self) -> None:
        assert bearer(None) == {} and bearer("") == {}
        server = await self._echo_server()
        try:
            async with HttpClient(headers=bearer(None)) as http:
                client = http.client_for("echo", str(server.make_url("")))
                assert await client.call_json("GET", "/echo") == {"authorization": None}
        finally:
            await server.close()
