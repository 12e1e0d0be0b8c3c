"""`create_service_app`: the skeleton every daemon is built with (SPEC §3).

- `GET /health` → `{"status":"ok","service":"<name>"}` and `GET /metrics` (Prometheus text);
- JSON responses via orjson;
- one error envelope for every 4xx/5xx, request-validation errors included, and the OpenAPI
  document says so;
- a request-body size limit (`server.max_body_bytes`): 413 before reading when Content-Length
  says so, and as soon as a streamed body crosses it otherwise;
- the trace-id middleware: `X-Lakehouse-Trace-Id` taken or minted, echoed, and bound for logs
  and outgoing calls;
- one structured log line per request (service, route, status, latency, trace id);
- unexpected exceptions logged with the trace id and answered 500 in the envelope.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakehouse_common.app.middleware import Metrics, ServiceMiddleware
from lakehouse_common.app.responses import JsonResponse, error_response
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.errors import STATUS_CODES, LakehouseError, envelope_of
from lakehouse_common.logging import get_logger
from lakehouse_common.tracing import current_trace_id

# A named check /health runs (see state.add_health_check): {"status": "ok"|"degraded", ...}.
HealthCheck = Callable[[], dict[str, Any]]

__all__ = ["ERROR_ENVELOPE_SCHEMA", "Lifespan", "create_service_app", "document_error_envelope"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


async def _lakehouse_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LakehouseError)
    return JsonResponse(envelope_of(exc, current_trace_id.get()), status_code=exc.status)


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": list(err.get("loc", ())),
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(422, "invalid_request", f"{where}: {first['msg']}", details)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cls = STATUS_CODES.get(exc.status_code)
    code = cls.code if cls is not None else f"http_{exc.status_code}"
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def create_service_app(
    name: str,
    settings: LakehouseSettings,
    *,
    routers: Sequence[APIRouter] = (),
    lifespan: Lifespan | None = None,
    description: str = "",
    inner_middleware: Sequence[tuple[type[Any], dict[str, Any]]] = (),
) -> FastAPI:
    """Build a daemon's FastAPI app with the shared skeleton; `lifespan` opens its resources."""
    metrics = Metrics(name)

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        log = get_logger("lakehouse.service")
        log.info("starting", port=getattr(settings.ports, name, None))
        if lifespan is None:
            yield
        else:
            async with lifespan(app):
                yield
        log.info("stopped")

    app = FastAPI(
        title=f"lakehouse {name}",
        description=description,
        version="0.1.0",
        default_response_class=JsonResponse,
        lifespan=_lifespan,
        # No OpenTelemetry here (tracing is our trace id, metrics are Prometheus): FastAPI's
        # native bridge would otherwise look up the global OTel providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.service_name = name
    app.state.metrics = metrics
    app.state.health_checks = {}

    app.add_exception_handler(LakehouseError, _lakehouse_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    # Added first = innermost: they run after the trace id is bound, and their answers are
    # logged, counted and carry the trace id like any other.
    for middleware_cls, options in inner_middleware:
        app.add_middleware(middleware_cls, **options)  # type: ignore[arg-type]
    app.add_middleware(
        ServiceMiddleware,
        service=name,
        max_body=settings.server.max_body_bytes,
        metrics=metrics,
    )

    @app.get("/health", tags=["ops"], summary="Liveness: the daemon answers.")
    async def health() -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok", "service": name}
        checks: dict[str, HealthCheck] = app.state.health_checks  # see add_health_check
        if checks:
            body["checks"] = {check: probe() for check, probe in checks.items()}
            body["degraded"] = any(c.get("status") != "ok" for c in body["checks"].values())
        return body

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics of this daemon.")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_error_envelope(generate_openapi())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app


ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "ErrorEnvelope",
    "description": "The body of every 4xx/5xx answer (SPEC §3).",
    "type": "object",
    "required": ["error", "trace_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"description": "Anything that helps: names, limits, row errors."},
            },
        },
        "trace_id": {"type": "string"},
    },
}


def document_error_envelope(schema: dict[str, Any]) -> None:
    """Make the OpenAPI document say what errors really look like: every documented 4xx/5xx,
    and a `default` answer on each operation, is the envelope (FastAPI documents 422 as its own
    `{detail}` shape, which no daemon answers). Schemathesis then checks every error answer
    against it (issue 9)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict):
                continue
            for status, response in responses.items():
                if str(status)[:1] in ("4", "5") and isinstance(response, dict):
                    response["content"] = envelope
            responses.setdefault(
                "default", {"description": "An error, in the envelope.", "content": envelope}
            )
    # FastAPI's `{detail}` shape and its item, unless a daemon's own model took the name.
    components.pop("HTTPValidationError", None)
    item = components.get("ValidationError", {})
    if {"loc", "msg", "type"} <= set(item.get("properties", {})) and (
        '"#/components/schemas/ValidationError"' not in json.dumps(schema)
    ):
        del components["ValidationError"]
