"""queryd's State: the query service (its engine, the lake's views and the auditor inside)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.queryd.service import QueryService


@dataclass(frozen=True, slots=True)
class State:
    query: QueryService


async def query_service(request: Request) -> QueryService:
    return state_of(request, State).query
