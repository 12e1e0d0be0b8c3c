"""queryd app: the service skeleton around one sandboxed DuckDB and the lake's views.

The lifespan opens the pooled `HttpClient` (catalogd: the views' manifests and the subject audit
log), the Store, the lake's files, the engine and the views' refresher task, each closed in
reverse — also when a later one fails to open (issue 15).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from lakehouse_common.app import create_service_app, settings_of, state_lifespan
from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.http import HttpClient
from lakehouse_common.store.settings import store_from_settings
from services.queryd.engine import QueryEngine
from services.queryd.lake import LakeFiles
from services.queryd.routes import router
from services.queryd.service import QueryService
from services.queryd.state import State
from services.queryd.views import LakeViews


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    http = await stack.enter_async_context(HttpClient(settings.client))
    clients = Clients.direct(http, settings)
    store = store_from_settings(settings)
    stack.callback(store.close)
    files = LakeFiles.from_settings(settings, store)
    stack.callback(files.close)
    engine = QueryEngine(settings.query, temp_dir=settings.data_dir / "tmp" / "queryd")
    stack.callback(engine.close)
    views = LakeViews(
        clients.catalog(),
        files,
        settings.data_dir,
        settings.query.catalog_refresh_s,
        engine.publish,
    )
    views.start()
    stack.push_async_callback(views.close)
    auditor = AccessAuditor(settings, "queryd", clients.subjects())
    return State(query=QueryService(settings.query, engine, views, auditor))


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "queryd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Read-only, sandboxed SQL (DuckDB) over the lake's datasets, "
        "observer streams and session logs.",
    )
