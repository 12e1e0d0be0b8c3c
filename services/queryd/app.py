"""queryd app: the service skeleton around one sandboxed DuckDB and the lake's views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lakehouse_common.app import create_service_app
from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.catalog import CatalogClient
from lakehouse_common.http import HttpClient
from lakehouse_common.store.settings import store_from_settings
from services.queryd.engine import QueryEngine
from services.queryd.lake import LakeFiles
from services.queryd.routes import router
from services.queryd.service import QueryService
from services.queryd.views import LakeViews


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = HttpClient(settings.client)
        await http.open()
        store = store_from_settings(settings)
        files = LakeFiles.from_settings(settings, store)
        engine = QueryEngine(settings.query, temp_dir=settings.data_dir / "tmp" / "queryd")
        catalog = CatalogClient(http.client_for("catalogd", settings.url_of("catalogd")))
        views = LakeViews(
            catalog, files, settings.data_dir, settings.query.catalog_refresh_s, engine.publish
        )
        auditor = AccessAuditor(settings, "queryd", http)
        app.state.query = QueryService(settings.query, engine, views, auditor)
        views.start()
        try:
            yield
        finally:
            await views.close()
            engine.close()
            files.close()
            store.close()
            await http.close()

    return create_service_app(
        "queryd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Read-only, sandboxed SQL (DuckDB) over the lake's datasets, "
        "observer streams and session logs.",
    )
