"""observerd app: the service skeleton around the stream store.

The lifespan repairs and counts every stream file before the daemon serves, so `/health`
answering means every torn tail left by a crash is already gone and the counts are exact.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import create_service_app, metrics_of, settings_of, state_lifespan
from lakehouse_common.config import LakehouseSettings
from services.observerd.routes import router
from services.observerd.service import ObservationStore, ObserveMetrics, kb_dir
from services.observerd.state import State


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    store = ObservationStore(
        kb_dir(settings.data_dir), settings.observe, ObserveMetrics(metrics_of(app).registry)
    )
    stack.push_async_callback(store.close)  # also closes the logs of a half-finished open
    await run_in_threadpool(store.open)
    await store.start()
    return State(observations=store)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "observerd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Append-only event streams (the knowledge base, `_kb`): group-committed, "
        "fsync'd appends; paged reads by line offset.",
    )
