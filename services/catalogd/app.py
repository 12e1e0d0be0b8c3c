"""catalogd app: the service skeleton around the dataset catalog and subject governance.

catalogd refuses to start without a usable audit key (issue 7): missing, shorter than 32 bytes
or accessible by group/other users. `create_app` checks first, so `python -m services.catalogd`
exits with that one-line reason before serving anything; the lifespan opens the key for real.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import NoReturn

from fastapi import FastAPI

from lakehouse_common.app import (
    add_health_check,
    create_service_app,
    metrics_of,
    settings_of,
    state_lifespan,
)
from lakehouse_common.audit import AuditKeyError, load_keyring
from lakehouse_common.config import LakehouseSettings, audit_key_path
from lakehouse_common.logging import get_logger
from lakehouse_common.store.settings import store_from_settings
from services.catalogd.checkpoints import CheckpointWriter
from services.catalogd.governance import SubjectGovernance
from services.catalogd.routes import router
from services.catalogd.service import DatasetCatalog
from services.catalogd.state import State
from services.catalogd.subject_routes import router as subject_router


def _refuse(exc: AuditKeyError) -> NoReturn:
    get_logger("lakehouse.catalogd").error("refusing to start", reason=exc.message)
    raise SystemExit(f"catalogd refuses to start: {exc.message}") from None


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    store = store_from_settings(settings)
    stack.callback(store.close)
    catalog = DatasetCatalog(store, settings.storage.default_bucket)
    try:
        governance = SubjectGovernance.open(settings, catalog)
    except AuditKeyError as exc:
        _refuse(exc)
    stack.callback(governance.close)
    # Signed checkpoints of the audit logs, published to the witness (issue 18); torn tails are
    # repaired before the first request.
    try:
        checkpoints = CheckpointWriter.open(settings, governance.logs, metrics_of(app).registry)
    except AuditKeyError as exc:
        _refuse(exc)
    await checkpoints.start()
    stack.push_async_callback(checkpoints.aclose)
    add_health_check(app, "audit_witness", checkpoints.health)
    return State(catalog=catalog, governance=governance)


def create_app(settings: LakehouseSettings) -> FastAPI:
    try:
        load_keyring(audit_key_path(settings))
    except AuditKeyError as exc:
        _refuse(exc)
    return create_service_app(
        "catalogd",
        settings,
        routers=[router, subject_router],
        lifespan=state_lifespan(open_state),
        description="Versioned dataset manifests (create-only commits), stored through the "
        "Store; subject manifests and their HMAC-chained access audit logs (SPEC §8).",
    )
