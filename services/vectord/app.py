"""vectord app: the service skeleton around the index set, plus the background snapshotter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import create_service_app, tune_malloc
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.logging import get_logger
from services.vectord.routes import router
from services.vectord.service import VectorService

log = get_logger("lakehouse.vectord")


async def snapshot_loop(service: VectorService, poll_s: float) -> None:
    """Take due snapshots (ops or interval, `[vector]`) one index at a time, off the loop."""
    while True:
        await asyncio.sleep(poll_s)
        for durable in service.snapshot_due():
            try:
                await run_in_threadpool(durable.snapshot)
            except Exception:  # the WAL still holds everything: log, retry next round
                log.exception("snapshot failed", index=durable.params.name)


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before the first index loads: the allocator settings apply to what is allocated later.
        tune_malloc(
            arena_max=settings.vector.malloc_arena_max,
            mmap_threshold=settings.vector.malloc_mmap_threshold_bytes,
        )
        service = VectorService(settings.data_dir / "vectors", settings.vector)
        await run_in_threadpool(service.open)
        app.state.vectors = service
        poll_s = min(0.25, settings.vector.snapshot_interval_s)
        task = asyncio.create_task(snapshot_loop(service, poll_s))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await run_in_threadpool(service.close)

    return create_service_app(
        "vectord",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Named HNSW indexes (hnswlib): upsert, delete, filtered k-NN search; "
        "write-ahead log + background snapshots.",
    )
