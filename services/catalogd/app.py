"""catalogd app: the service skeleton around the dataset catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.service import create_service_app
from lakehouse_common.store.settings import store_from_settings
from services.catalogd.routes import router
from services.catalogd.service import DatasetCatalog


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = store_from_settings(settings)
        app.state.catalog = DatasetCatalog(store, settings.storage.default_bucket)
        try:
            yield
        finally:
            store.close()

    return create_service_app(
        "catalogd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Versioned dataset manifests (create-only commits), stored through the Store.",
    )
