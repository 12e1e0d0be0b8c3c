"""Typed daemon state (issue 15): `state_lifespan` opens resources on an exit stack and closes
them in reverse, also when a later one fails to open; `state_of` answers 503 outside the
lifespan."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from lakehouse_common.app import (
    create_service_app,
    metrics_of,
    settings_of,
    state_lifespan,
    state_of,
)
from lakehouse_common.config import LakehouseSettings, load_settings
from lakehouse_common.tracing import TRACE_HEADER


class Resource:
    """Something opened at start and closed at stop; records both in a shared journal."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal
        self.closed = False
        journal.append(f"open {name}")

    async def close(self) -> None:
        self.closed = True
        self.journal.append(f"close {self.name}")


@dataclass(frozen=True, slots=True)
class State:
    first: Resource
    second: Resource


async def first_resource(request: Request) -> Resource:
    return state_of(request, State).first


router = APIRouter()


@router.get("/v1/test/first")
async def read_first(first: Annotated[Resource, Depends(first_resource)]) -> dict[str, str]:
    return {"name": first.name}


class Broken(RuntimeError):
    pass


def _settings() -> LakehouseSettings:
    return load_settings(environ={})


def _app(journal: list[str], *, fail_second: bool = False) -> FastAPI:
    async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
        first = Resource("first", journal)
        stack.push_async_callback(first.close)
        if fail_second:
            raise Broken("the second resource cannot open")
        second = Resource("second", journal)
        stack.push_async_callback(second.close)
        return State(first=first, second=second)

    return create_service_app(
        "testd", _settings(), routers=[router], lifespan=state_lifespan(open_state)
    )


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _assert_not_started(resp: httpx.Response) -> None:
    assert resp.status_code == 503
    body = resp.json()
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["message"] == "testd is not started"
    assert body["trace_id"] == resp.headers[TRACE_HEADER]


class TestStateLifespan:
    async def test_routes_read_the_opened_state(self) -> None:
        journal: list[str] = []
        app = _app(journal)
        async with app.router.lifespan_context(app), _client(app) as client:
            resp = await client.get("/v1/test/first")
        assert resp.status_code == 200
        assert resp.json() == {"name": "first"}

    async def test_resources_close_in_reverse_order_at_stop(self) -> None:
        journal: list[str] = []
        app = _app(journal)
        async with app.router.lifespan_context(app):
            assert journal == ["open first", "open second"]
        assert journal == ["open first", "open second", "close second", "close first"]

    async def test_failure_opening_the_second_closes_the_first(self) -> None:
        journal: list[str] = []
        app = _app(journal, fail_second=True)
        with pytest.raises(Broken):
            async with app.router.lifespan_context(app):
                pytest.fail("the lifespan must not start")
        assert journal == ["open first", "close first"]

    async def test_state_is_gone_after_shutdown(self) -> None:
        journal: list[str] = []
        app = _app(journal)
        async with app.router.lifespan_context(app):
            pass
        async with _client(app) as client:
            _assert_not_started(await client.get("/v1/test/first"))

    async def test_state_of_before_start_is_503_envelope(self) -> None:
        app = _app([])
        async with _client(app) as client:
            _assert_not_started(await client.get("/v1/test/first"))


class TestKernelState:
    def test_settings_and_metrics_of_answer_what_the_factory_holds(self) -> None:
        settings = _settings()
        app = create_service_app("testd", settings)
        assert settings_of(app) is settings
        assert metrics_of(app).registry is not metrics_of(create_service_app("testd", settings))
