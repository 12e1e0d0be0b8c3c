"""Answers every daemon writes: orjson JSON and the error envelope (SPEC §3)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from lakehouse_common.errors import error_body
from lakehouse_common.tracing import current_trace_id

__all__ = ["JsonResponse", "error_response"]


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


def error_response(status: int, code: str, message: str, details: Any = None) -> JsonResponse:
    return JsonResponse(
        error_body(code, message, details=details, trace_id=current_trace_id.get()),
        status_code=status,
    )
