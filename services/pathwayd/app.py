"""pathwayd app: the service skeleton around the pathway store.

The lifespan rebuilds the index from the pathway log before the daemon serves; it opens one
pooled `HttpClient` for embedd (suggestions) and the `Observer` that reports every recorded
pathway to observerd's `pathways` stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import create_service_app
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from services.pathwayd.routes import router
from services.pathwayd.service import PathwayStore, Vectors


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = HttpClient(settings.client)
        await http.open()
        embedd = EmbedClient(http.client_for("embedd", settings.url_of("embedd")))
        model = settings.pathway.model or None

        async def embed(texts: list[str]) -> Vectors:
            return await embedd.embed_array(texts, model)

        store = PathwayStore(
            settings.data_dir / "pathways",
            settings.pathway,
            embed,
            embed_batch=settings.embed.max_texts,
        )
        observer = Observer(settings, "pathwayd", http, registry=app.state.metrics.registry)
        try:
            await run_in_threadpool(store.open)
            await store.start()
            await observer.start()
            app.state.pathways = store
            app.state.observer = observer
            yield
        finally:
            await store.close()
            await observer.close()
            await http.close()

    return create_service_app(
        "pathwayd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Workflow pathways (steps taken for a demand, and the outcome): record, "
        "fetch, list by role, and suggest the next step from similar past pathways.",
    )
