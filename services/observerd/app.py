"""observerd app: the service skeleton around the stream store.

The lifespan repairs and counts every stream file before the daemon serves, so `/health`
answering means every torn tail left by a crash is already gone and the counts are exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import create_service_app
from lakehouse_common.config import LakehouseSettings
from services.observerd.routes import router
from services.observerd.service import ObservationStore, ObserveMetrics, kb_dir


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = ObservationStore(
            kb_dir(settings.data_dir),
            settings.observe,
            ObserveMetrics(app.state.metrics.registry),
        )
        await run_in_threadpool(store.open)
        await store.start()
        app.state.observations = store
        try:
            yield
        finally:
            await store.close()

    return create_service_app(
        "observerd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Append-only event streams (the knowledge base, `_kb`): group-committed, "
        "fsync'd appends; paged reads by line offset.",
    )
