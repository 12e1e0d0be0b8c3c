"""matrixd app: the service skeleton around `MatrixService`.

One `HttpClient` (one aiohttp pool) serves every call to embedd, vectord, queryd, observerd and
catalogd (the subject audit log: results from a governed dataset are audited before answering).
Nothing is called at start: the playbook index is created on the first recording, so matrixd
starts (and answers `/health`) whatever state its dependencies are in, and a request that
needs a daemon that is down answers 502 naming it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from lakehouse_common.app import create_service_app, metrics_of, settings_of, state_lifespan
from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from services.matrixd.routes import router
from services.matrixd.service import MatrixService
from services.matrixd.state import State


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    """The pool, then the observer on it, then the service over both; each one's close is on
    the stack as soon as it is open, so a failure further on closes what came before."""
    settings = settings_of(app)
    registry = metrics_of(app).registry
    http = await stack.enter_async_context(HttpClient(settings.client))
    observer = Observer(settings, "matrixd", http, registry=registry)
    await observer.start()
    stack.push_async_callback(observer.close)
    clients = Clients.direct(http, settings)
    matrix = MatrixService(
        settings,
        embed=clients.embed(),
        vectors=clients.vectors(),
        query=clients.query(),
        observer=observer,
        auditor=AccessAuditor(settings, "matrixd", clients.subjects()),
        registry=registry,
    )
    return State(matrix=matrix)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "matrixd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Staffing search: embed → vectord k-NN → same-role playbooks (boost, "
        "inject) → re-rank; playbook recordings; evidence bundles narrowed by SQL.",
    )
