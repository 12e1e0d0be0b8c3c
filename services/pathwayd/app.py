"""pathwayd app: the service skeleton around the pathway store.

The lifespan rebuilds the index from the pathway log before the daemon serves; it opens one
pooled `HttpClient` for embedd (suggestions) and the `Observer` that reports every recorded
pathway to observerd's `pathways` stream.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import create_service_app, metrics_of, settings_of, state_lifespan
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from services.pathwayd.routes import router
from services.pathwayd.service import PathwayStore, Vectors
from services.pathwayd.state import State


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    http = await stack.enter_async_context(HttpClient(settings.client))
    embedd = Clients.direct(http, settings).embed()
    model = settings.pathway.model or None

    async def embed(texts: list[str]) -> Vectors:
        return await embedd.embed_array(texts, model)

    observer = Observer(settings, "pathwayd", http, registry=metrics_of(app).registry)
    await observer.start()
    stack.push_async_callback(observer.close)
    store = PathwayStore(
        settings.data_dir / "pathways",
        settings.pathway,
        embed,
        embed_batch=settings.embed.max_texts,
    )
    stack.push_async_callback(store.close)  # safe on a log that did not finish opening
    await run_in_threadpool(store.open)
    await store.start()
    return State(pathways=store, observer=observer)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "pathwayd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Workflow pathways (steps taken for a demand, and the outcome): record, "
        "fetch, list by role, and suggest the next step from similar past pathways.",
    )
