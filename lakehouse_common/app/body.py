"""Request bodies: the size limit's exception, JSON parsed once from bytes, and the OpenAPI
schema of a body a route parses itself (SPEC §3)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "AnyPathConvertor",
    "BodyTooLarge",
    "parse_json_body",
    "request_body_schema",
    "validate_json_body",
]


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
