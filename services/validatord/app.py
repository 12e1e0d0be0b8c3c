"""validatord app: the service skeleton around the validators and the iterate loop (SPEC §6).

The lifespan opens one pooled `HttpClient` (queryd for roster facts, chatd for the loop,
observerd for reports) and the `Observer`, and closes them in reverse: the observer first, so
its last flush still has the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lakehouse_common.app import create_service_app
from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.chat import ChatClient
from lakehouse_common.contracts.query import QueryClient
from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from lakehouse_common.session_log import session_log_path
from services.validatord.iterate import IterateLoop
from services.validatord.roster import Roster
from services.validatord.routes import router
from services.validatord.service import PayloadValidator, ValidatorMetrics


def create_app(settings: LakehouseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = app.state.metrics.registry
        metrics = ValidatorMetrics(registry)
        http = HttpClient(settings.client)
        await http.open()
        observer = Observer(settings, "validatord", http, registry=registry)
        await observer.start()
        roster = Roster(
            QueryClient(http.client_for("queryd", settings.url_of("queryd"))),
            settings.validator.roster_dataset,
            AccessAuditor(settings, "validatord", http),
        )
        validator = PayloadValidator(settings.validator, roster, observer, metrics)
        chat = ChatClient(
            http.client_for("chatd", settings.url_of("chatd")),
            timeout_s=settings.validator.chat_timeout_s,
        )
        app.state.validator = validator
        app.state.iterate = IterateLoop(
            validator, chat, session_log_path(settings), observer, metrics
        )
        app.state.session_log = session_log_path(settings)
        try:
            yield
        finally:
            await observer.close()
            await http.close()

    return create_service_app(
        "validatord",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="Validators for fill proposals, emails and SMS; the generate→validate→retry "
        "loop over chatd; the session log.",
    )
