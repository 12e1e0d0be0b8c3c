"""ingestd app: the service skeleton around the Store, a catalogd client and the ingest service.

The lifespan opens the pooled `HttpClient` (catalogd; embedd and vectord for index jobs), the
Store and the index jobs' runner, each closed in reverse — also when a later one fails to open
(issue 15): running jobs are cancelled before the pool they call through closes.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from lakehouse_common.app import create_service_app, settings_of, state_lifespan
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.http import HttpClient
from lakehouse_common.store.settings import store_from_settings
from services.ingestd.jobs import IndexJobs
from services.ingestd.retrieval import EmbeddPort, VectordPort
from services.ingestd.routes import router
from services.ingestd.service import IngestService
from services.ingestd.state import State


async def open_state(app: FastAPI, stack: AsyncExitStack) -> State:
    settings = settings_of(app)
    http = await stack.enter_async_context(HttpClient(settings.client))
    clients = Clients.direct(http, settings)
    store = store_from_settings(settings)
    stack.callback(store.close)
    service = IngestService(
        store,
        clients.catalog(),
        settings.ingest,
        bucket=settings.storage.default_bucket,
        spool_dir=settings.data_dir / "ingest" / "spool",
    )
    service.clean_spool()
    jobs = IndexJobs(
        store,
        settings.storage.default_bucket,
        EmbeddPort(clients.embed()),
        VectordPort(clients.vectors()),
        retries=settings.ingest.index_retries,
        retry_backoff_s=settings.ingest.index_retry_backoff_s,
    )
    stack.push_async_callback(jobs.close)
    return State(ingest=service, index_jobs=jobs)


def create_app(settings: LakehouseSettings) -> FastAPI:
    return create_service_app(
        "ingestd",
        settings,
        routers=[router],
        lifespan=state_lifespan(open_state),
        description="CSV, JSONL and Parquet uploads become zstd Parquet dataset versions.",
    )
