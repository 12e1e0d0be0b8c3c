"""storaged as a real process, against both backends: what the in-process tier cannot show —
a body streamed over a real socket, an upload cut off mid-body, acknowledged writes surviving
kill -9 and a restart, and the request log line."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack, backend_config

MAX_BODY = 8 * 1024 * 1024


@pytest.fixture(scope="module", params=["fs", "s3"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    extra = {"server": {"max_body_bytes": MAX_BODY}, **backend_config(request, request.param)}
    live = LiveStack.create(tmp_path_factory.mktemp(f"storaged-{request.param}"), extra)
    with live.running("storaged"):
        yield live


@pytest.fixture
def sd(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("storaged") as client:
        yield client


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def obj(bucket: str, key: str) -> str:
    return f"/v1/storage/objects/{bucket}/{key}"


class TestUpload:
    def test_streamed_body_over_limit_is_413_and_writes_nothing(self, sd: httpx.Client) -> None:
        key = unique("huge")

        def chunks() -> Iterator[bytes]:
            for _ in range(MAX_BODY // (1024 * 1024) + 2):
                yield b"z" * (1024 * 1024)

        resp = sd.put(obj("lakehouse", key), content=chunks())
        assert_envelope(resp, 413, "payload_too_large")
        assert sd.get(obj("lakehouse", key)).status_code == 404

    def test_interrupted_upload_leaves_nothing(self, stack: LiveStack, sd: httpx.Client) -> None:
        key = unique("cut")
        host, port = stack.url("storaged").removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"PUT {obj('lakehouse', key)} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: 100000\r\n\r\n".encode()
                + b"partial" * 10
            )
            time.sleep(0.2)
        time.sleep(0.3)
        assert sd.get(obj("lakehouse", key)).status_code == 404
        listed = sd.get("/v1/storage/objects/lakehouse", params={"prefix": key}).json()
        assert listed["count"] == 0
        if stack.settings.storage.backend == "fs":
            staging = Path(stack.settings.data_dir, "objects", ".staging")
            assert not list(staging.glob("*")) if staging.exists() else True


class TestDurability:
    def test_acknowledged_write_survives_kill_9(self, stack: LiveStack, sd: httpx.Client) -> None:
        key = unique("durable")
        data = os.urandom(4096)
        assert sd.put(obj("lakehouse", key), content=data).status_code == 200
        stack.kill_9("storaged")
        stack.start("storaged")
        assert sd.get(obj("lakehouse", key)).content == data

    def test_object_survives_restart(self, stack: LiveStack, sd: httpx.Client) -> None:
        key = unique("restart")
        data = b"kept"
        assert sd.put(obj("lakehouse", key), content=data).status_code == 200
        stack.stop()
        stack.start("storaged")
        with stack.client("storaged") as fresh:
            got = fresh.get(obj("lakehouse", key))
            assert got.content == data
            assert got.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'


class TestLogs:
    def test_request_log_line_has_trace_route_status_latency(
        self, stack: LiveStack, sd: httpx.Client
    ) -> None:
        trace = f"test-{secrets.token_hex(6)}"
        sd.get(obj("lakehouse", unique()), headers={TRACE_HEADER: trace})
        time.sleep(0.2)
        lines = [json.loads(line) for line in stack.log("storaged").splitlines() if trace in line]
        assert lines, "storaged logged nothing with the trace id"
        line = next(ln for ln in lines if ln.get("event") == "request")
        assert line["service"] == "storaged"
        assert line["route"] == "/v1/storage/objects/{bucket}/{key}"
        assert line["status"] == 404
        assert isinstance(line["latency_ms"], float)
        assert line["trace_id"] == trace
