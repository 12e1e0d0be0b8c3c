"""ingestd's State: the ingest service and the index jobs it runs in the background."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.ingestd.jobs import IndexJobs
from services.ingestd.service import IngestService


@dataclass(frozen=True, slots=True)
class State:
    ingest: IngestService
    index_jobs: IndexJobs


async def ingest_service(request: Request) -> IngestService:
    return state_of(request, State).ingest


async def index_jobs(request: Request) -> IndexJobs:
    return state_of(request, State).index_jobs
