"""The service skeleton every daemon is built with (SPEC §3): the app factory, the middleware,
body parsing, answers, typed state, and the process runner.

Daemons import from here; the submodules say where each part lives:
:mod:`.factory` (`create_service_app`), :mod:`.middleware` (trace id, body limit, log, metrics),
:mod:`.body` (JSON parsed once, body schemas), :mod:`.responses` (orjson, the envelope),
:mod:`.state` (typed State, lifespans that never leak), :mod:`.run` (`run_service`).
"""

from lakehouse_common.app.body import (
    BodyTooLarge,
    parse_json_body,
    request_body_schema,
    validate_json_body,
)
from lakehouse_common.app.factory import (
    ERROR_ENVELOPE_SCHEMA,
    HealthCheck,
    Lifespan,
    create_service_app,
    document_error_envelope,
)
from lakehouse_common.app.middleware import Metrics, ServiceMiddleware, storage_full
from lakehouse_common.app.responses import JsonResponse, error_response
from lakehouse_common.app.run import run_service, tune_gc, tune_malloc
from lakehouse_common.app.state import (
    StateOpener,
    add_health_check,
    metrics_of,
    settings_of,
    state_lifespan,
    state_of,
)

__all__ = [
    "ERROR_ENVELOPE_SCHEMA",
    "BodyTooLarge",
    "HealthCheck",
    "JsonResponse",
    "Lifespan",
    "Metrics",
    "ServiceMiddleware",
    "StateOpener",
    "add_health_check",
    "create_service_app",
    "document_error_envelope",
    "error_response",
    "metrics_of",
    "parse_json_body",
    "request_body_schema",
    "run_service",
    "settings_of",
    "state_lifespan",
    "state_of",
    "storage_full",
    "tune_gc",
    "tune_malloc",
    "validate_json_body",
]
