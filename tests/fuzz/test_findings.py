"""Regressions of what the fault and fuzz runs found, pinned in-process (fast, no stack).

- a 4xx echoing an integer beyond 64 bits (`GET /v1/pathways?limit=10**32`,
  `GET /v1/sessions?limit=…`) was a 500: orjson refuses such integers;
- a write refused for lack of space (ENOSPC, a quota, SQLite's "disk is full") was a 500; it is
  507 `insufficient_storage`;
- vectord's and observerd's hand-documented request bodies pointed at `$ref`s the document did
  not hold, so schemathesis could not generate them;
- the documents described 422 answers as FastAPI's `{detail}`, which no daemon sends.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from lakehouse_common.app import create_service_app, request_body_schema
from lakehouse_common.config import load_settings
from lakehouse_common.contracts.observe import ObserveRequest
from lakehouse_common.contracts.vectors import AddRequest, SearchRequest
from lakehouse_common.errors import InvalidInput
from tests.support.envelope import assert_envelope

HUGE = 172849338392108093766461185589248

router = APIRouter()


class Thing(BaseModel):
    name: str


@router.get("/v1/test/limit")
async def limit_refused(limit: int) -> None:
    raise InvalidInput(f"limit={limit} exceeds 1000", details={"limit": limit, "max": 1000})


@router.post("/v1/test/things")
async def create_thing(thing: Thing) -> Thing:
    return thing


@router.put("/v1/test/full/{how}")
def write_on_a_full_disk(how: str) -> None:
    if how == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device")
    if how == "quota":
        raise OSError(errno.EDQUOT, "Disk quota exceeded")
    if how == "wrapped":
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("could not write") from exc
    if how == "sqlite":
        db = sqlite3.connect(":memory:")
        db.execute("PRAGMA max_page_count = 1")
        db.execute("CREATE TABLE t (x TEXT)")
        db.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    raise OSError(errno.EACCES, "Permission denied")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app("storaged", load_settings(environ={}), routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_4xx_echoing_a_huge_integer_is_still_a_4xx(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/test/limit", params={"limit": HUGE})
    body = assert_envelope(resp, 400, "invalid_input")
    assert body["error"]["details"] == {"limit": HUGE, "max": 1000}
    assert body["trace_id"]


@pytest.mark.parametrize("how", ["enospc", "quota", "wrapped", "sqlite"])
async def test_a_full_disk_is_507_insufficient_storage(client: httpx.AsyncClient, how: str) -> None:
    resp = await client.put(f"/v1/test/full/{how}")
    body = assert_envelope(resp, 507, "insufficient_storage")
    assert "nothing was kept" in body["error"]["message"]
    assert body["trace_id"]


async def test_other_os_errors_stay_500(client: httpx.AsyncClient) -> None:
    resp = await client.put("/v1/test/full/eacces")
    assert_envelope(resp, 500, "internal")


@pytest.mark.parametrize("model", [AddRequest, SearchRequest, ObserveRequest])
def test_hand_documented_bodies_hold_no_dangling_refs(model: type[BaseModel]) -> None:
    extra = request_body_schema(model)
    schema = extra["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in json.dumps(schema)
    assert schema["title"] == model.__name__


async def test_errors_are_documented_as_the_envelope(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    responses = document["paths"]["/v1/test/things"]["post"]["responses"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert responses["422"]["content"]["application/json"]["schema"] == envelope
    assert responses["default"]["content"]["application/json"]["schema"] == envelope
    assert "HTTPValidationError" not in json.dumps(document)
    refused = await client.post("/v1/test/things", json={})
    assert set(refused.json()) == {"error", "trace_id"}
