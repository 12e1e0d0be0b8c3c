"""The cheapest tier: one daemon's app in the test process — no subprocess, no socket
(STYLE.md, "Tests"; issue 15).

`create_app(settings)` is built with the test's own settings and its lifespan runs for as long
as the client is open, exactly as under uvicorn; requests go straight to the ASGI app. Use it
for one daemon's API; keep real daemons (`tests.support.stack.LiveStack`) for what crosses
daemons, the gateway's forwarding, restarts and kill -9, logs and faults.

- `in_process(create_app, settings)`: a sync `httpx.Client` (Starlette's `TestClient`, which
  runs the lifespan and the app on one event loop of its own), so module-scoped fixtures and
  plain `def` tests work unchanged;
- `in_process_async(app)`: an `httpx.AsyncClient` over `httpx.ASGITransport` for `async def`
  tests, with the lifespan run by hand (ASGITransport does not run it).

A server-side exception is raised in the test rather than answered 500: a test that would see a
500 has found a bug either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.testclient import TestClient

from lakehouse_common.config import LakehouseSettings
from tests.support.stack import stack_config

BASE_URL = "http://test"

AppFactory = Callable[[LakehouseSettings], FastAPI]


def daemon_settings(
    root: Path, extra: dict[str, dict[str, Any]] | None = None
) -> LakehouseSettings:
    """Settings like a live stack's (data dir under `root`, its own audit key), for an app built
    in this process."""
    root.mkdir(parents=True, exist_ok=True)
    return stack_config(root, extra)[1]


@contextmanager
def in_process(create_app: AppFactory, settings: LakehouseSettings) -> Iterator[httpx.Client]:
    """A client of `create_app(settings)` with the app's lifespan running until it closes."""
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        yield client


@asynccontextmanager
async def in_process_async(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An async client of `app`, its lifespan running until the client closes."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client
