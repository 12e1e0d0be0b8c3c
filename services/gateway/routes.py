"""Gateway routes: aggregate health and the forwarding proxy for every `/v1/<area>/...`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from yarl import URL

from lakehouse_common.app import BodyTooLarge
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.http import HttpClient, upstream_failures
from lakehouse_common.logging import get_logger
from lakehouse_common.tracing import TRACE_HEADER, current_trace_id
from services.gateway.service import (
    DROP_DOWNSTREAM,
    DROP_UPSTREAM,
    Target,
    aggregate_health,
    forward_headers,
)
from services.gateway.state import routing_table, stack_settings, upstream_http

router = APIRouter()
log = get_logger("lakehouse.gateway")

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.get("/v1/health", tags=["gateway"], summary="Aggregate health of every installed daemon.")
async def get_stack_health(
    http: Annotated[HttpClient, Depends(upstream_http)],
    settings: Annotated[LakehouseSettings, Depends(stack_settings)],
) -> dict[str, Any]:
    """Probe each daemon's `/health` concurrently; `status` is `ok` only when all answer ok."""
    return await aggregate_health(http.session, settings)


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _request_body(request: Request, buffer_max: int) -> bytes | AsyncIterator[bytes] | None:
    """What to send upstream: nothing, the whole body (small and sized), or a stream."""
    length = _content_length(request.headers.get("content-length"))
    if length is not None:
        if length == 0:
            return None
        if length <= buffer_max:
            return await request.body()
    elif "chunked" not in request.headers.get("transfer-encoding", "").lower():
        return None

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    return chunks()


def _upstream_failures(target: Target, timeout_s: float) -> AbstractContextManager[None]:
    """aiohttp failures while talking to `target` as the errors the gateway answers: 502
    `upstream_unavailable` or 504 `upstream_timeout`, naming the daemon. Our own body-limit
    refusal (413) passes through, also when aiohttp wraps it."""
    return upstream_failures(
        target.daemon,
        unreachable=lambda exc: (
            f"{target.daemon} is unreachable at {target.base_url} ({exc.os_error})"
        ),
        timed_out=f"{target.daemon} did not answer within {timeout_s}s",
        failed=lambda exc: f"{target.daemon} failed while answering: {type(exc).__name__}: {exc}",
        passthrough=(BodyTooLarge,),
    )


async def forward_request(request: Request, path: str) -> Response:
    """Forward the request to its owning daemon and its answer back, streaming both ways
    unless a body is small enough to buffer (`gateway.buffer_max_bytes`).

    502 `upstream_unavailable` names the daemon when it cannot be reached; 504
    `upstream_timeout` when it does not answer in `gateway.upstream_timeout_s`.
    """
    # The typed dependencies called, not declared: every request of every client passes here,
    # and FastAPI's dependency solving costs tens of µs on each (issue 15: ~25 µs for three).
    routing = await routing_table(request)
    settings = (await stack_settings(request)).gateway
    http = await upstream_http(request)
    # The scope's paths, not `request.url`: building that URL costs on every request.
    target = routing.resolve(request.scope["path"])

    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    url = URL(
        target.base_url + raw_path.decode("latin-1") + ("?" + query.decode() if query else ""),
        encoded=True,
    )
    headers = forward_headers(request.scope["headers"], DROP_UPSTREAM)
    headers.append((TRACE_HEADER, current_trace_id.get()))

    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout_s, sock_read=settings.upstream_timeout_s
    )
    with _upstream_failures(target, settings.upstream_timeout_s):
        body = await _request_body(request, settings.buffer_max_bytes)
        upstream = await http.session.request(
            request.method,
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=timeout,
        )

    raw_headers = [
        (k.lower(), v)
        for k, v in upstream.raw_headers
        if k.decode("latin-1").lower() not in DROP_DOWNSTREAM
    ]
    length = _content_length(upstream.headers.get("content-length"))
    response: Response
    if length is not None and length <= settings.buffer_max_bytes:
        try:
            with _upstream_failures(target, settings.upstream_timeout_s):
                content = await upstream.read()
        finally:
            upstream.release()
        response = Response(content, status_code=upstream.status)
    else:

        async def response_body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("upstream body interrupted", daemon=target.daemon, error=repr(exc))
                raise

        async def release() -> None:  # async: a sync background task costs a thread hop
            upstream.release()

        response = StreamingResponse(
            response_body(), status_code=upstream.status, background=BackgroundTask(release)
        )
    response.raw_headers = raw_headers
    return response


# One route per method: a single multi-method route gives every method the same OpenAPI
# operationId, which code generators refuse.
for _method in PROXY_METHODS:
    router.add_api_route(
        "/v1/{path:anypath}",
        forward_request,
        methods=[_method],
        tags=["gateway"],
        summary="Forward to the daemon that owns /v1/<area> (path, status, headers, body "
        "unchanged).",
        operation_id=f"forward_{_method.lower()}",
    )
