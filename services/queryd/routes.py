"""queryd routes (SPEC §4): run a read-only query; list the views."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from lakehouse_common.contracts.query import (
    ARROW_MEDIA_TYPE,
    CSV_MEDIA_TYPE,
    QueryRequest,
    QueryResponse,
    ViewInfo,
    ViewList,
)
from services.queryd.service import QueryService
from services.queryd.state import query_service

router = APIRouter(prefix="/v1", tags=["query"])

_TABULAR: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "json rows, a csv body or an Arrow IPC stream, as `format` asks",
        "content": {CSV_MEDIA_TYPE: {}, ARROW_MEDIA_TYPE: {}},
    }
}


@router.post(
    "/query",
    response_model=QueryResponse,
    responses=_TABULAR,
    summary="Run one read-only SQL statement over the lake's views (json, csv or arrow).",
)
async def run_query(
    service: Annotated[QueryService, Depends(query_service)], body: QueryRequest
) -> Response:
    """400 for a refused or failing statement, 408 past the time limit, 422 above the row
    limit."""
    answer = await service.run(body)
    return Response(answer.body, media_type=answer.media_type, headers=answer.headers)


@router.get(
    "/query/views",
    response_model=ViewList,
    summary="The views a query can read: datasets (latest and per version), kb_ and sessions.",
)
async def list_views(service: Annotated[QueryService, Depends(query_service)]) -> ViewList:
    """Refreshed from catalogd first when older than `query.catalog_refresh_s`."""
    views = [
        ViewInfo(name=v.name, source=v.source, dataset=v.dataset, version=v.version)
        for v in await service.list_views()
    ]
    return ViewList(
        views=views, count=len(views), catalog_refreshed_at=service.views.catalog_refreshed_at
    )
