"""observerd routes (SPEC §5): append events, page through a stream, list the streams.

The append body is parsed with pydantic's JSON parser straight from bytes, after a size check
of its own (`observe.max_body_bytes`, far below the server-wide limit): schema errors answer
the shared 422 envelope. See `lakehouse_common.contracts.observe` for the wire format.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from lakehouse_common.app import JsonResponse, request_body_schema, validate_json_body
from lakehouse_common.contracts.observe import (
    ObservationPage,
    ObserveRequest,
    ObserveResponse,
    StreamList,
)
from lakehouse_common.errors import PayloadTooLarge
from lakehouse_common.tracing import current_trace_id
from services.observerd.service import ObservationStore, decode_records
from services.observerd.state import observation_store

router = APIRouter(tags=["observe"])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes exceeds observe.max_body_bytes ({limit})",
            details={"limit": limit},
        )
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(
                f"request body exceeds observe.max_body_bytes ({limit})", details={"limit": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> ObserveRequest:
    # Strict JSON first: pydantic's parser takes NaN, Infinity and 1e400 into `Any` fields, and
    # orjson would then store them as null. (orjson alone is no answer either: it turns an
    # integer beyond 64 bits into a float, where pydantic keeps it and the store refuses it.)
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"Invalid JSON: {exc}", "type": "json_invalid"}]
        ) from None
    return validate_json_body(raw, ObserveRequest)


def _body_schema() -> dict[str, Any]:
    return request_body_schema(ObserveRequest)


@router.post(
    "/v1/observe/{stream}",
    response_model=ObserveResponse,
    summary="Append one event (`{event}`) or a batch (`{events: [...]}`) to a stream.",
    openapi_extra=_body_schema(),
)
async def observe_events(
    request: Request, store: Annotated[ObservationStore, Depends(observation_store)], stream: str
) -> ObserveResponse:
    """Answered once every line is fsync'd. 400 for a bad or unconfigured stream name, 422 for
    a body of another shape or an event that is not an object, 413 for too many or too large
    events or too large a body."""
    store.writable(stream)  # 400 before reading a body
    body = _parse(await _read_body(request, store.settings.max_body_bytes))
    done = await store.append(stream, body.items(), body.trace_id or current_trace_id.get())
    return ObserveResponse(
        stream=done.stream, accepted=done.accepted, first_line=done.first_line, total=done.total
    )


@router.get(
    "/v1/observations",
    response_model=StreamList,
    summary="Every stream with its line count and size.",
)
async def list_streams(
    store: Annotated[ObservationStore, Depends(observation_store)],
) -> StreamList:
    """Configured streams (even before their first event) and any other stream file present."""
    streams = store.streams()
    return StreamList(streams=streams, count=len(streams))


@router.get(
    "/v1/observations/{stream}",
    response_model=ObservationPage,
    summary="A page of a stream's records from line `since` on; `next` is the following page.",
)
async def read_observations(
    store: Annotated[ObservationStore, Depends(observation_store)],
    stream: str,
    since: Annotated[int, Query(ge=0, description="0-based line offset to start from")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="most records")] = None,
) -> Response:
    """`next` equals `total` once the reader has caught up; polling with it returns only new
    lines. 400 for a bad name, a `since` past the end or a `limit` over the maximum; 404 for
    a stream that is neither configured nor present."""
    target, effective = store.page_bounds(stream, since, limit)
    total = target.lines
    lines = await run_in_threadpool(target.read_lines, since, effective)
    records = decode_records(lines, since)
    return JsonResponse(
        {
            "stream": stream,
            "since": since,
            "next": since + len(records),
            "total": max(total, since + len(records)),
            "count": len(records),
            "records": records,
        }
    )
