"""The service factory every daemon is built with (SPEC §3).

`create_service_app(name, settings, ...)` gives each daemon the same skeleton:

- `GET /health` → `{"status":"ok","service":"<name>"}` and `GET /metrics` (Prometheus text);
- JSON responses via orjson;
- one error envelope for every 4xx/5xx, request-validation errors included;
- a request-body size limit (`server.max_body_bytes`): 413 before reading when Content-Length
  says so, and as soon as a streamed body crosses it otherwise;
- the trace-id middleware: `X-Lakehouse-Trace-Id` taken or minted, echoed, and bound for logs
  and outgoing calls;
- one structured log line per request (service, route, status, latency, trace id);
- unexpected exceptions logged with the trace id and answered 500 in the envelope.

`run_service` starts uvicorn with graceful shutdown (SIGTERM drains in-flight requests for
`server.shutdown_grace_s`).
"""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import orjson
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ValidationError
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.errors import (
    STATUS_CODES,
    InsufficientStorage,
    LakehouseError,
    envelope_of,
    error_body,
)
from lakehouse_common.logging import configure_logging, get_logger
from lakehouse_common.tracing import (
    TRACE_HEADER_LOWER,
    accept_trace_id,
    current_trace_id,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_TRACE_HEADER_BYTES = TRACE_HEADER_LOWER.encode()
_QUIET_PATHS = frozenset({"/health", "/metrics"})


class JsonResponse(JSONResponse):
    """JSON rendered by orjson: compact, UTF-8, fast (FastAPI's ORJSONResponse is deprecated)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            # orjson refuses integers beyond 64 bits, and a 4xx may echo one from the request
            # (`?limit=10**30` found by issue 9's fuzzing was a 500): the stdlib writes any int.
            text = json.dumps(
                content, ensure_ascii=False, separators=(",", ":"), default=_orjson_value
            )
            return text.encode()


def _orjson_value(value: Any) -> Any:
    """What orjson would write for a value the stdlib encoder does not know (datetime, UUID…)."""
    return orjson.loads(orjson.dumps(value))


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body crosses the limit.

    An HTTPException (not a LakehouseError) on purpose: FastAPI turns any other exception raised
    while it reads a body into a generic 400, but lets HTTPException through.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class AnyPathConvertor(PathConvertor):
    """`{name:anypath}`: like `path`, but also matches control characters such as newlines.

    Starlette's `path` is `.*` without DOTALL, so `/objects/b/a%0Ab` would match no route and
    answer 404; with this the route matches and the key validator answers the right 400.
    """

    regex = "(?s:.*)"


register_url_convertor("anypath", AnyPathConvertor())


class Metrics:
    """Per-app Prometheus registry (not the process-global one, so tests can build many apps)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.service = service
        self.requests = Counter(
            "lakehouse_http_requests",
            "HTTP requests answered",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lakehouse_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
        )
        # Labelled children by (method, route, status): `labels()` takes a lock and checks its
        # arguments on every call, a measurable share of a fast request. This grows exactly as
        # the metrics' own label sets do (routes are templates or "<unmatched>").
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        """Count one answered request and its latency."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed_s)


ModelT = TypeVar("ModelT", bound=BaseModel)


async def parse_json_body(request: Request, model: type[ModelT]) -> ModelT:
    """The body parsed by pydantic's JSON parser straight from bytes — no `json.loads` plus a
    second validation pass as FastAPI's body parameters do (a hot route's own parse costs a
    fraction). Errors answer the same 422 envelope, located under `body`. Pair the route with
    `openapi_extra=request_body_schema(model)` so its schema is still documented."""
    return validate_json_body(await request.body(), model)


def validate_json_body(raw: bytes, model: type[ModelT]) -> ModelT:
    """`raw` parsed into `model` by pydantic's JSON parser; errors as the 422 envelope's
    `RequestValidationError`, located under `body` (for routes that read the body themselves)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [
            {**err, "loc": ("body", *err.get("loc", ()))}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None


def request_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the JSON body of a route that parses it itself.

    The models it nests are inlined: FastAPI never adds them to the document's components, so a
    `$ref` to them would dangle (issue 9: schemathesis skipped those bodies as unresolvable).
    """
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name in seen:
                    raise ValueError(f"{model.__name__}: recursive model {name} cannot be inlined")
                return inline(defs[name], (*seen, name))
            return {key: inline(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


def error_response(status: int, code: str, message: str, details: Any = None) -> JsonResponse:
    return JsonResponse(
        error_body(code, message, details=details, trace_id=current_trace_id.get()),
        status_code=status,
    )


# errno values that mean "the disk or the quota is full" (EFBIG: a file-size limit).
_STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_full(exc: BaseException) -> str | None:
    """Why `exc` (or what caused it) is a full disk, or None when it is something else.

    Writes refused for lack of space are answered 507 `insufficient_storage`, not 500: the
    stores undo a failed write (a staged object is dropped, an append is truncated back), so
    the refusal is clean and the client may retry once space is freed (issue 9).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _STORAGE_FULL_ERRNOS:
            return current.strerror or errno.errorcode.get(current.errno or 0, "disk full")
        if (
            isinstance(current, sqlite3.OperationalError)
            and getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        ):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


class ServiceMiddleware:
    """Trace id, body limit, request log, metrics and the last-resort 500 — one ASGI layer.

    Pure ASGI rather than BaseHTTPMiddleware: it must not buffer streamed bodies (the gateway
    and storaged stream both ways) and it sits on every request's hot path.
    """

    def __init__(self, app: ASGIApp, *, service: str, max_body: int, metrics: Metrics) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body
        self.metrics = metrics
        self.log = get_logger("lakehouse.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = None
        declared_length: int | None = None
        for name, value in scope["headers"]:
            if name == _TRACE_HEADER_BYTES:
                incoming = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    declared_length = int(value)
                except ValueError:
                    declared_length = None
        trace_id = accept_trace_id(incoming)
        token = current_trace_id.set(trace_id)
        started = time.perf_counter()
        status_holder = [500]
        response_started = False
        trace_header = (_TRACE_HEADER_BYTES, trace_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != _TRACE_HEADER_BYTES]
                headers.append(trace_header)
                message = {**message, "headers": headers}
            await send(message)

        received = 0
        limit = self.max_body

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            if declared_length is not None and declared_length > limit:
                response = error_response(
                    413,
                    "payload_too_large",
                    f"request body of {declared_length} bytes exceeds the limit of {limit} bytes",
                )
                await response(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            full = storage_full(exc)
            if full is not None:
                self.log.error("storage full", path=scope.get("path"), error=full)
            else:
                self.log.exception(
                    "unhandled error", path=scope.get("path"), error=type(exc).__name__
                )
            if response_started:
                raise  # the answer is half sent: let the server abort the connection
            if full is not None:
                response = error_response(
                    InsufficientStorage.status,
                    InsufficientStorage.code,
                    f"not enough storage to complete the write ({full}); nothing was kept",
                )
            else:
                response = error_response(
                    500, "internal", f"internal error ({type(exc).__name__}); see logs for trace id"
                )
            await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path_format", None) or "<unmatched>"
            status = status_holder[0]
            method = scope.get("method", "")
            self.metrics.observe(method, route_path, status, elapsed)
            path = scope.get("path", "")
            if path not in _QUIET_PATHS or status >= 400:
                self.log.info(
                    "request",
                    method=method,
                    route=route_path,
                    path=path,
                    status=status,
                    latency_ms=round(elapsed * 1000, 3),
                )
            current_trace_id.reset(token)


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
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": name}

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


def tune_gc(thresholds: Sequence[int]) -> None:
    """Freeze what is alive now (modules, the app) out of the cyclic collector and set its
    thresholds: long-lived objects then cost no gen-2 pass, and passes come less often."""
    if thresholds:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*thresholds)


# mallopt(3) parameters (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_malloc(*, arena_max: int, mmap_threshold: int) -> bool:
    """Set glibc's malloc arena count and mmap threshold for this process (0 leaves one as it
    is); False where the C library is not glibc (nothing changed)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    if arena_max:
        ok = bool(mallopt(_M_ARENA_MAX, arena_max)) and ok
    if mmap_threshold:
        ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and ok
    return ok


def run_service(name: str, app_factory: Callable[[LakehouseSettings], FastAPI]) -> None:
    """The body of every `python -m services.<daemon>`: load config, log, serve."""
    from lakehouse_common.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    configure_logging(name, settings.server.log_level)
    app = app_factory(settings)
    tune_gc(settings.server.gc_thresholds)
    uvicorn.run(
        app,
        host=settings.bind_host(name),
        port=settings.ports.of(name),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_s),
        timeout_keep_alive=settings.server.keep_alive_s,
        server_header=False,
    )
