"""ingestd app: the service skeleton around the Store, a catalogd client and the ingest service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lakehouse_common.app import create_service_app
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.catalog import CatalogClient
from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.contracts.vectors import VectorClient
from lakehouse_common.http import HttpClient
from lakehouse_common.store.settings import store_from_settings
from services.ingestd.jobs import IndexJobs
from services.ingestd.retrieval import EmbeddPort, VectordPort
from services.ingestd.routes import router
from services.ingestd.service import IngestService


def create_app(settings: LakehouseSettings) -> FastAPI:
    http = HttpClient(settings.client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = store_from_settings(settings)
        await http.open()
        catalog = CatalogClient(http.client_for("catalogd", settings.url_of("catalogd")))
        service = IngestService(
            store,
            catalog,
            settings.ingest,
            bucket=settings.storage.default_bucket,
            spool_dir=settings.data_dir / "ingest" / "spool",
        )
        service.clean_spool()
        app.state.ingest = service
        jobs = IndexJobs(
            store,
            settings.storage.default_bucket,
            EmbeddPort(EmbedClient(http.client_for("embedd", settings.url_of("embedd")))),
            VectordPort(VectorClient(http.client_for("vectord", settings.url_of("vectord")))),
            retries=settings.ingest.index_retries,
            retry_backoff_s=settings.ingest.index_retry_backoff_s,
        )
        app.state.index_jobs = jobs
        try:
            yield
        finally:
            await jobs.close()
            await http.close()
            store.close()

    return create_service_app(
        "ingestd",
        settings,
        routers=[router],
        lifespan=lifespan,
        description="CSV, JSONL and Parquet uploads become zstd Parquet dataset versions.",
    )
