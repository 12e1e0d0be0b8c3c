"""The service factory, in-process: health, metrics, envelope, trace ids, body limit, 500s."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel

from lakehouse_common.app import create_service_app
from lakehouse_common.config import LakehouseSettings, load_settings
from lakehouse_common.errors import Conflict, NotFound
from lakehouse_common.tracing import TRACE_HEADER
from tests.support.envelope import assert_envelope

MINTED = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")


class Item(BaseModel):
    name: str
    count: int


router = APIRouter()


@router.post("/v1/test/items")
async def create_item(item: Item) -> Item:
    return item


@router.post("/v1/test/echo")
async def echo_body(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@router.get("/v1/test/missing")
async def missing() -> None:
    raise NotFound("no such thing", details={"id": "x"})


@router.get("/v1/test/conflict")
async def conflict() -> None:
    raise Conflict("taken")


@router.get("/v1/test/boom")
async def boom() -> None:
    raise RuntimeError("kaboom")


@router.get("/v1/test/boom-sync")
def boom_sync() -> None:
    raise ValueError("sync kaboom")


def _settings(max_body: int = 1024) -> LakehouseSettings:
    return load_settings(environ={}, overrides={"server.max_body_bytes": max_body})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app("testd", _settings(), routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


class TestHealthAndMetrics:
    async def test_health_shape(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/health")
        assert resp.status_code == 200
        assert resp.json() == {"status": "ok", "service": "testd"}

    async def test_metrics_count_requests_by_route_template(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/v1/test/missing")
        text = (await client.get("/metrics")).text
        assert "# TYPE lakehouse_http_requests_total counter" in text
        assert 'route="/v1/test/missing",service="testd",status="404"' in text
        assert "lakehouse_http_request_duration_seconds_bucket" in text

    async def test_responses_are_json(self, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v1/test/items", json={"name": "é", "count": 2})
        assert resp.headers["content-type"] == "application/json"
        assert resp.content == '{"name":"é","count":2}'.encode()


class TestTraceIds:
    async def test_minted_when_absent(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/health")
        assert MINTED.fullmatch(resp.headers[TRACE_HEADER])

    async def test_echoed_when_present(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/health", headers={TRACE_HEADER: "18abbabdc2306a83-c2306aa9"})
        assert resp.headers[TRACE_HEADER] == "18abbabdc2306a83-c2306aa9"

    async def test_unsafe_incoming_id_replaced(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/health", headers={TRACE_HEADER: "a b\tc"})
        assert MINTED.fullmatch(resp.headers[TRACE_HEADER])

    async def test_minted_ids_are_time_ordered(self) -> None:
        from lakehouse_common.tracing import mint_trace_id

        ids = [mint_trace_id() for _ in range(200)]
        assert [i[:16] for i in ids] == sorted(i[:16] for i in ids)

    async def test_error_envelope_carries_the_request_trace_id(
        self, client: httpx.AsyncClient
    ) -> None:
        resp = await client.get("/v1/test/missing", headers={TRACE_HEADER: "abc-123"})
        body = assert_envelope(resp, 404, "not_found")
        assert body["trace_id"] == "abc-123"


class TestErrorEnvelope:
    async def test_lakehouse_error_status_code_details(self, client: httpx.AsyncClient) -> None:
        body = assert_envelope(await client.get("/v1/test/missing"), 404, "not_found")
        expected = {"code": "not_found", "message": "no such thing", "details": {"id": "x"}}
        assert body["error"] == expected
        assert_envelope(await client.get("/v1/test/conflict"), 409, "conflict")

    async def test_unknown_route_is_404_envelope(self, client: httpx.AsyncClient) -> None:
        body = assert_envelope(await client.get("/v1/nope"), 404, "not_found")
        assert "GET /v1/nope" in body["error"]["message"]  # type: ignore[index]

    async def test_wrong_method_is_405_envelope(self, client: httpx.AsyncClient) -> None:
        assert_envelope(await client.delete("/v1/test/items"), 405, "method_not_allowed")

    async def test_schema_violation_is_422_envelope(self, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v1/test/items", json={"name": "x", "count": "many"})
        body = assert_envelope(resp, 422, "invalid_request")
        assert "count" in body["error"]["message"]  # type: ignore[index]
        assert body["error"]["details"][0]["loc"] == ["body", "count"]  # type: ignore[index]

    async def test_malformed_json_is_422_envelope(self, client: httpx.AsyncClient) -> None:
        resp = await client.post(
            "/v1/test/items", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_envelope(resp, 422, "invalid_request")

    @pytest.mark.parametrize("path", ["/v1/test/boom", "/v1/test/boom-sync"])
    async def test_unexpected_exception_is_500_envelope(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        body = assert_envelope(await client.get(path), 500, "internal")
        assert "kaboom" not in body["error"]["message"]  # type: ignore[index]


class TestBodyLimit:
    async def test_declared_length_over_limit_is_413(self, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v1/test/echo", content=b"x" * 2048)
        body = assert_envelope(resp, 413, "payload_too_large")
        assert "1024" in body["error"]["message"]  # type: ignore[index]

    async def test_streamed_body_over_limit_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 200

        resp = await client.post("/v1/test/echo", content=chunks())
        assert_envelope(resp, 413, "payload_too_large")

    async def test_streamed_body_over_limit_on_model_route_is_413(
        self, client: httpx.AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(10):
                yield b"z" * 200
            yield b'", "count": 1}'

        resp = await client.post(
            "/v1/test/items", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_envelope(resp, 413, "payload_too_large")

    async def test_body_at_limit_passes(self, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v1/test/echo", content=b"x" * 1024)
        assert resp.status_code == 200
        assert resp.json() == {"size": 1024}


class TestGcTuning:
    """`tune_gc` runs in a child interpreter: it changes process-wide state."""

    @staticmethod
    def _run(thresholds: str) -> str:
        import subprocess
        import sys

        code = (
            "import gc; from lakehouse_common.app import tune_gc; "
            f"tune_gc({thresholds}); print(gc.get_threshold(), gc.get_freeze_count() > 0)"
        )
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()

    def test_thresholds_are_set_and_startup_objects_frozen(self) -> None:
        assert self._run("[20000, 50, 100]") == "(20000, 50, 100) True"

    def test_empty_keeps_python_defaults(self) -> None:
        assert self._run("[]") == "(700, 10, 10) False"


class TestMallocTuning:
    """The settings reach glibc: a 300 KiB block comes from the heap under a 1 MiB mmap
    threshold and from its own mapping under a 128 KiB one (child interpreter: process-wide)."""

    CODE = """
import ctypes
from lakehouse_common.app import tune_malloc

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p

def in_heap(threshold):
    assert tune_malloc(arena_max=2, mmap_threshold=threshold)
    address = libc.malloc(300 * 1024)
    for line in open("/proc/self/maps"):
        span, *rest = line.split()
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= address < hi:
            return line.rstrip().endswith("[heap]")
    raise AssertionError("block not mapped")

print(in_heap(1024 * 1024), in_heap(128 * 1024))
"""

    def test_mmap_threshold_decides_where_big_blocks_come_from(self) -> None:
        import subprocess
        import sys

        out = subprocess.run(
            [sys.executable, "-c", self.CODE], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "True False"
