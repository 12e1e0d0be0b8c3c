"""catalogd app: the service skeleton around the dataset catalog and subject governance.

catalogd refuses to start without a usable audit key (issue 7): missing, shorter than 32 bytes
or accessible by group/other users. `create_app` checks first, so `python -m services.catalogd`
exits with that one-line reason before serving anything; the lifespan opens the key for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

from fastapi import FastAPI

from lakehouse_common.app import create_service_app
from lakehouse_common.audit import AuditKeyError, load_keyring
from lakehouse_common.config import LakehouseSettings, audit_key_path
from lakehouse_common.logging import get_logger
from lakehouse_common.store.settings import store_from_settings
from services.catalogd.checkpoints import CheckpointWriter
from services.catalogd.governance import SubjectGovernance
from services.catalogd.routes import router
from services.catalogd.service import DatasetCatalog
from services.catalogd.subject_routes import router as subject_router


def _refuse(exc: AuditKeyError) -> NoReturn:
    get_logger("lakehouse.catalogd").error("refusing to start", reason=exc.message)
    raise SystemExit(f"catalogd refuses to start: {exc.message}") from None


def create_app(settings: LakehouseSettings) -> FastAPI:
    try:
        load_keyring(audit_key_path(settings))
    except AuditKeyError as exc:
        _refuse(exc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = store_from_settings(settings)
        app.state.catalog = DatasetCatalog(store, settings.storage.default_bucket)
        try:
            app.state.governance = SubjectGovernance.open(settings, app.state.catalog)
        except AuditKeyError as exc:
            store.close()
            _refuse(exc)
        # Issue 18: signed checkpoints of the audit logs, published to the witness; repairs
        # torn tails before serving. (Re-wire into the typed State lifespan when merging.)
        try:
            checkpoints = CheckpointWriter.open(
                settings, app.state.governance.logs, app.state.metrics.registry
            )
        except AuditKeyError as exc:
            app.state.governance.close()
            store.close()
            _refuse(exc)
        await checkpoints.start()
        app.state.health_checks = {"audit_witness": checkpoints.health}
        try:
            yield
        finally:
            await checkpoints.aclose()
            app.state.governance.close()
            store.close()

    return create_service_app(
        "catalogd",
        settings,
        routers=[router, subject_router],
        lifespan=lifespan,
        description="Versioned dataset manifests (create-only commits), stored through the "
        "Store; subject manifests and their HMAC-chained access audit logs (SPEC §8).",
    )
