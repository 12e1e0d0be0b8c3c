"""validatord app: the service skeleton around the validators and the iterate loop (SPEC §6).

The lifespan opens one pooled `HttpClient` (queryd for roster facts, chatd for the loop,
observerd for reports) and the `Observer`, and closes them in reverse: the observer first, so
its last flush still has the pool — and the pool also when the observer fails to start.
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
from lakehouse_common.session_log import session_log_path
from services.validatord.iterate import IterateLoop
from services.validatord.roster import Roster
from services.validatord.routes import router
from services.validatord.service import PayloadValidator, ValidatorMetrics
from services.validatord.state import State


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    registry = metrics_of(app).registry
    metrics = ValidatorMetrics(registry)
    http = await stack.enter_async_context(HttpClient(settings.client))
    clients = Clients.direct(http, settings)
    observer = Observer(settings, "validatord", http, registry=registry)
    await observer.start()
    stack.push_async_callback(observer.close)
    roster = Roster(
        clients.query(),
        settings.validator.roster_dataset,
        AccessAuditor(settings, "validatord", clients.subjects()),
    )
    validator = PayloadValidator(settings.validator, roster, observer, metrics)
    session_log = session_log_path(settings)
    chat = clients.chat(timeout_s=settings.validator.chat_timeout_s)
    return State(
        settings=settings.validator,
        validator=validator,
        iterate=IterateLoop(validator, chat, session_log, observer, metrics),
        session_log=session_log,
    )


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "validatord",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="Validators for fill proposals, emails and SMS; the generate→validate→retry "
        "loop over chatd; the session log.",
    )
