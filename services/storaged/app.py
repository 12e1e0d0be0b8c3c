"""storaged app: the service skeleton around one `Store` opened from config."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lakehouse_common.app import create_service_app
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.store.settings import store_from_settings
from services.storaged.routes import router


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store_from_settings(settings)
        try:
            yield
        finally:
            app.state.store.close()

    return create_service_app(
        "storaged",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Object API over the configured Store (local filesystem or S3).",
    )
