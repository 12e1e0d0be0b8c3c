"""The pooled client and storaged's typed client against a real storaged daemon."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator

import pytest

from lakehouse_common.config import ClientSettings, ServerSettings
from lakehouse_common.contracts.storage import StorageClient
from lakehouse_common.errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable
from lakehouse_common.http import HttpClient
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
