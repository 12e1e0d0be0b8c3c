"""vectord app: the service skeleton around the index set, plus the background snapshotter."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import create_service_app, settings_of, state_lifespan, tune_malloc
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.logging import get_logger
from services.vectord.routes import router
from services.vectord.service import VectorService
from services.vectord.state import State

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


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    """Load every index, then start the snapshotter; stopping runs it backwards (no snapshot
    task left running while the indexes take their closing snapshots)."""
    settings = settings_of(app)
    # Before the first index loads: the allocator settings apply to what is allocated later.
    tune_malloc(
        arena_max=settings.vector.malloc_arena_max,
        mmap_threshold=settings.vector.malloc_mmap_threshold_bytes,
    )
    service = VectorService(settings.data_dir / "vectors", settings.vector)
    await run_in_threadpool(service.open)
    stack.push_async_callback(run_in_threadpool, service.close)
    poll_s = min(0.25, settings.vector.snapshot_interval_s)
    task = asyncio.create_task(snapshot_loop(service, poll_s))
    stack.push_async_callback(_stop, task)
    return State(vectors=service)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "vectord",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Named HNSW indexes (hnswlib): upsert, delete, filtered k-NN search; "
        "write-ahead log + background snapshots.",
    )
