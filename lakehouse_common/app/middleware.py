"""The one ASGI layer in front of every daemon: trace id, body limit, request log, metrics and the
last-resort 500 (SPEC §3)."""

from __future__ import annotations

import errno
import sqlite3
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakehouse_common.app.body import BodyTooLarge
from lakehouse_common.app.responses import error_response
from lakehouse_common.errors import InsufficientStorage
from lakehouse_common.logging import get_logger
from lakehouse_common.tracing import TRACE_HEADER_LOWER, accept_trace_id, current_trace_id

__all__ = ["Metrics", "ServiceMiddleware", "storage_full"]

_TRACE_HEADER_BYTES = TRACE_HEADER_LOWER.encode()
_QUIET_PATHS = frozenset({"/health", "/metrics"})


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
