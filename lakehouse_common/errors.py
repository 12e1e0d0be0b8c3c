"""The error family every daemon raises and every client rebuilds (SPEC §3).

One envelope for every 4xx/5xx answer::

    {"error": {"code": "...", "message": "...", "details": ...}, "trace_id": "..."}

Each error class carries its HTTP ``status`` and wire ``code``; ``ERROR_CODES`` maps a code back to
its class so a typed client can re-raise the same exception a daemon raised (Chroma's client
does this), keeping the trace id across hops.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LakehouseError(Exception):
    """Base of every error a daemon answers on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: Any = None, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.trace_id = trace_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInput(LakehouseError):
    """The request is well-formed HTTP but its content is wrong (bad key, bad name, bad value)."""

    status = 400
    code = "invalid_input"


class Unauthorized(LakehouseError):
    status = 401
    code = "unauthorized"


class NotFound(LakehouseError):
    status = 404
    code = "not_found"


class MethodNotAllowed(LakehouseError):
    status = 405
    code = "method_not_allowed"


class Conflict(LakehouseError):
    """A create-only write lost, or the target is in a state that forbids the write."""

    status = 409
    code = "conflict"


class RequestTimeout(LakehouseError):
    """The work the request asked for ran past its time limit and was stopped (queryd)."""

    status = 408
    code = "query_timeout"


class PayloadTooLarge(LakehouseError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(LakehouseError):
    status = 415
    code = "unsupported_media_type"


class UnprocessableEntity(LakehouseError):
    """The request body does not match the endpoint's schema."""

    status = 422
    code = "invalid_request"


class Internal(LakehouseError):
    status = 500
    code = "internal"


class UpstreamUnavailable(LakehouseError):
    """A daemon or provider this request needs could not be reached."""

    status = 502
    code = "upstream_unavailable"


class UpstreamError(LakehouseError):
    """A daemon or provider answered, but with something this daemon cannot use."""

    status = 502
    code = "upstream_error"


class ServiceUnavailable(LakehouseError):
    status = 503
    code = "service_unavailable"


class UpstreamTimeout(LakehouseError):
    status = 504
    code = "upstream_timeout"


class InsufficientStorage(LakehouseError):
    """The disk (or quota) holding the daemon's data is full: the write was refused whole and
    nothing of it was kept; retry once space is freed."""

    status = 507
    code = "insufficient_storage"


def _registry() -> dict[str, type[LakehouseError]]:
    out: dict[str, type[LakehouseError]] = {}
    stack: list[type[LakehouseError]] = [LakehouseError]
    while stack:
        cls = stack.pop()
        out.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return out


ERROR_CODES: dict[str, type[LakehouseError]] = _registry()

STATUS_CODES: dict[int, type[LakehouseError]] = {
    cls.status: cls for cls in reversed(list(ERROR_CODES.values()))
}


def error_body(
    code: str, message: str, *, details: Any = None, trace_id: str | None = None
) -> dict[str, Any]:
    """The one envelope every error answer uses (SPEC §3)."""
    return {
        "error": {"code": code, "message": message, "details": details},
        "trace_id": trace_id or "",
    }


def envelope_of(exc: LakehouseError, trace_id: str | None) -> dict[str, Any]:
    return error_body(exc.code, exc.message, details=exc.details, trace_id=trace_id)


def from_envelope(status: int, body: Any) -> LakehouseError:
    """Rebuild the typed exception a daemon raised from its status and error body.

    An unknown code keeps the status's class; a body that is not an envelope becomes an
    ``UpstreamError`` that quotes what came back, so nothing is silently swallowed.
    """
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code", ""))
        cls = ERROR_CODES.get(code) or STATUS_CODES.get(status) or UpstreamError
        exc = cls(
            str(err.get("message", "")),
            details=err.get("details"),
            trace_id=body.get("trace_id") or None,
        )
        return exc
    return UpstreamError(f"unexpected error answer (HTTP {status}): {str(body)[:200]}")
