"""Typed daemon state: one dataclass per daemon, opened by its lifespan, read by routes.

A daemon's lifespan opens its resources into an :class:`~contextlib.AsyncExitStack` and answers
its ``State``; :func:`state_lifespan` keeps that object on the app and closes every resource in
reverse order when the daemon stops — and when a later resource fails to open, so a failed start
leaks nothing (STYLE.md, "The shape of the house"; issue 15)::

    async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
        settings = settings_of(app)
        http = await stack.enter_async_context(HttpClient(settings.client))  # closed last
        store = store_from_settings(settings)
        stack.callback(store.close)               # registered right after it opened
        ...
        return State(store=store, ...)

    app = create_service_app(..., lifespan=state_lifespan(open_state))

Routes reach the state through one typed dependency per resource, built on :func:`state_of`
and used as ``Annotated[Store, Depends(object_store)]``. The dependencies are ``async def``:
FastAPI runs a plain ``def`` dependency in a worker thread, one thread hop per request for a
getattr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request

from lakehouse_common.app.factory import HealthCheck, Lifespan
from lakehouse_common.app.middleware import Metrics
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.errors import ServiceUnavailable

__all__ = [
    "StateOpener",
    "add_health_check",
    "metrics_of",
    "settings_of",
    "state_lifespan",
    "state_of",
]

StateT = TypeVar("StateT")

# Opens a daemon's resources (each registered on the exit stack) and answers its State.
StateOpener = Callable[[FastAPI, AsyncExitStack], Awaitable[Any]]

_ATTR = "lakehouse_state"


def state_lifespan(open_state: StateOpener) -> Lifespan:
    """A lifespan that opens the daemon's State with `open_state` and closes it in reverse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            setattr(app.state, _ATTR, await open_state(app, stack))
            try:
                yield
            finally:
                # Gone before the resources close: a late request answers 503, not a closed pool.
                delattr(app.state, _ATTR)

    return lifespan


def state_of(request: Request, cls: type[StateT]) -> StateT:
    """The daemon's State; 503 when the lifespan has not opened it (or has closed it)."""
    state = getattr(request.app.state, _ATTR, None)
    if not isinstance(state, cls):
        name = getattr(request.app.state, "service_name", "the daemon")
        raise ServiceUnavailable(f"{name} is not started", details={"service": name})
    return state


def settings_of(app: FastAPI) -> LakehouseSettings:
    """The settings `create_service_app` was built with."""
    settings: LakehouseSettings = app.state.settings
    return settings


def metrics_of(app: FastAPI) -> Metrics:
    """The app's own Prometheus registry holder (one per app, so tests can build many)."""
    metrics: Metrics = app.state.metrics
    return metrics


def add_health_check(app: FastAPI, name: str, probe: HealthCheck) -> None:
    """Name a check `/health` runs: `probe()` answers `{"status": "ok"|"degraded", ...}`. The
    daemon stays live (`status: ok`) and says which check is degraded; the gateway's
    `/v1/health` reports it. Registered by `open_state` for what it opened."""
    checks: dict[str, HealthCheck] = app.state.health_checks
    checks[name] = probe
