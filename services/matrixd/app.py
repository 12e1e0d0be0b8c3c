"""matrixd app: the service skeleton around `MatrixService`.

One `HttpClient` (one aiohttp pool) serves every call to embedd, vectord, queryd, observerd and
catalogd (the subject audit log: results from a governed dataset are audited before answering).
Nothing is called at start: the playbook index is created on the first recording, so matrixd
starts (and answers `/health`) whatever state its dependencies are in, and a request that
needs a daemon that is down answers 502 naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lakehouse_common.app import create_service_app
from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.contracts.query import QueryClient
from lakehouse_common.contracts.vectors import VectorClient
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from services.matrixd.routes import router
from services.matrixd.service import MatrixService


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = HttpClient(settings.client)
        await http.open()
        observer = Observer(settings, "matrixd", http, registry=app.state.metrics.registry)
        await observer.start()
        app.state.matrix = MatrixService(
            settings,
            embed=EmbedClient(http.client_for("embedd", settings.url_of("embedd"))),
            vectors=VectorClient(http.client_for("vectord", settings.url_of("vectord"))),
            query=QueryClient(http.client_for("queryd", settings.url_of("queryd"))),
            observer=observer,
            auditor=AccessAuditor(settings, "matrixd", Clients.direct(http, settings).subjects()),
            registry=app.state.metrics.registry,
        )
        try:
            yield
        finally:
            await observer.close()
            await http.close()

    return create_service_app(
        "matrixd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Staffing search: embed → vectord k-NN → same-role playbooks (boost, "
        "inject) → re-rank; playbook recordings; evidence bundles narrowed by SQL.",
    )
