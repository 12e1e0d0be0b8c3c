"""storaged app: the service skeleton around one `Store` opened from config."""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from lakehouse_common.app import create_service_app, settings_of, state_lifespan
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.store.settings import store_from_settings
from services.storaged.routes import router
from services.storaged.state import State


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    store = store_from_settings(settings_of(app))
    stack.callback(store.close)
    return State(store=store)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "storaged",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Object API over the configured Store (local filesystem or S3).",
    )
