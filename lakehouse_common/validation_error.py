"""The ValidationError wire format of validatord's results (SPEC §3, used by §6).

A payload validator reports what is wrong with a payload as data (a list of these), not as an
exception. The wire shape is serde's externally tagged enum from the original Rust system, and
must stay byte-compatible with it (a parity probe found the Go port's flat shape broke callers
silently)::

    {"Schema":{"field":"x","reason":"y"}}
    {"Completeness":{"reason":"y"}}
    {"Consistency":{"reason":"y"}}
    {"Policy":{"reason":"y"}}

:meth:`ValidationError.to_json` writes exactly serde_json's compact bytes (no spaces, ``field``
before ``reason``, non-ASCII as raw UTF-8, control characters as ``\\n``/``\\u001f``-style escapes).
Parsing also accepts the Go port's legacy flat shape ``{"Kind":"schema","Field":"x","Reason":"y"}``
so rows it persisted still load. Anything else (an unknown variant, a missing or extra key, a
non-string value) raises :class:`ValidationErrorFormatError`; nothing is silently defaulted.

The class is deliberately called ``ValidationError`` because the SPEC names it so; it is *not*
``pydantic.ValidationError``. Modules that need both import this one under another name, e.g.
``from lakehouse_common.validation_error import ValidationError as PayloadError``.

It can be used directly as a pydantic field type (``errors: list[ValidationError]``): pydantic
validates either wire shape into the dataclass and serialises it back to the exact wire shape,
in Python and JSON mode, with a matching JSON schema for OpenAPI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from lakehouse_common.errors import InvalidInput

__all__ = ["KINDS", "Kind", "ValidationError", "ValidationErrorFormatError", "json_type"]

Kind = Literal["schema", "completeness", "consistency", "policy"]

# Wire variant names, in the original enum's declaration order.
_VARIANT_OF_KIND: Final[dict[Kind, str]] = {
    "schema": "Schema",
    "completeness": "Completeness",
    "consistency": "Consistency",
    "policy": "Policy",
}
_KIND_OF_VARIANT: Final[dict[str, Kind]] = {v: k for k, v in _VARIANT_OF_KIND.items()}
KINDS: Final[tuple[Kind, ...]] = tuple(_VARIANT_OF_KIND)


class ValidationErrorFormatError(InvalidInput, ValueError):
    """A value that is not a well-formed ValidationError in either wire shape.

    A ``ValueError`` so that pydantic reports it as a field error (422) when it happens inside a
    request model, and an ``InvalidInput`` (400) if it escapes a handler some other way.
    """


@dataclass(frozen=True, slots=True)
class ValidationError:
    """One problem a validator found in a payload: its kind, why, and for schema errors where.

    ``field`` is required for ``kind="schema"`` and must be None for the other kinds; build
    values with :meth:`schema`, :meth:`completeness`, :meth:`consistency` or :meth:`policy`.
    """

    kind: Kind
    reason: str
    field: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _VARIANT_OF_KIND:
            raise ValidationErrorFormatError(
                f"unknown ValidationError kind {self.kind!r}; expected one of {list(KINDS)}"
            )
        _require_text("reason", self.reason)
        if self.kind == "schema":
            _require_text("field", self.field)
        elif self.field is not None:
            raise ValidationErrorFormatError(
                f"a {self.kind} ValidationError has no field (got {self.field!r})"
            )

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def schema(cls, field: str, reason: str) -> ValidationError:
        return cls("schema", reason, field)

    @classmethod
    def completeness(cls, reason: str) -> ValidationError:
        return cls("completeness", reason)

    @classmethod
    def consistency(cls, reason: str) -> ValidationError:
        return cls("consistency", reason)

    @classmethod
    def policy(cls, reason: str) -> ValidationError:
        return cls("policy", reason)

    # -- wire format --------------------------------------------------------------------------

    @property
    def variant(self) -> str:
        """The wire tag: ``Schema``, ``Completeness``, ``Consistency`` or ``Policy``."""
        return _VARIANT_OF_KIND[self.kind]

    def to_wire(self) -> dict[str, dict[str, str]]:
        """The externally tagged shape, keys in serde's order (``field`` then ``reason``)."""
        if self.field is not None:
            return {self.variant: {"field": self.field, "reason": self.reason}}
        return {self.variant: {"reason": self.reason}}

    def to_json(self) -> bytes:
        """serde_json's compact bytes for this value.

        Python's escaping with ``ensure_ascii=False`` is serde_json's: ``\\"``, ``\\\\``,
        ``\\b \\f \\n \\r \\t``, other control characters as lowercase ``\\u00XX``; everything
        else (DEL, U+2028, emoji) raw UTF-8.
        """
        return json.dumps(self.to_wire(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_wire(cls, obj: object) -> ValidationError:
        """Parse a decoded JSON value in the tagged shape or the legacy flat shape."""
        if not isinstance(obj, dict):
            raise ValidationErrorFormatError(
                f"a ValidationError is a JSON object, got {json_type(obj)}"
            )
        if "Kind" in obj:
            return cls._from_legacy(obj)
        if len(obj) != 1:
            raise ValidationErrorFormatError(
                "a ValidationError has exactly one variant key "
                f"({', '.join(_KIND_OF_VARIANT)}), got keys {sorted(map(str, obj))}"
            )
        ((tag, body),) = obj.items()
        kind = _KIND_OF_VARIANT.get(tag) if isinstance(tag, str) else None
        if kind is None:
            raise ValidationErrorFormatError(
                f"unknown ValidationError variant {tag!r}; "
                f"expected one of {', '.join(_KIND_OF_VARIANT)}"
            )
        if not isinstance(body, dict):
            raise ValidationErrorFormatError(
                f"ValidationError variant {tag} holds a JSON object, got {json_type(body)}"
            )
        expected = ("field", "reason") if kind == "schema" else ("reason",)
        _require_keys(f"variant {tag}", body, expected)
        return cls(kind, body["reason"], body.get("field"))

    @classmethod
    def _from_legacy(cls, obj: dict[Any, Any]) -> ValidationError:
        raw_kind = obj["Kind"]
        kind = next((k for k in KINDS if isinstance(raw_kind, str) and raw_kind.lower() == k), None)
        if kind is None:
            raise ValidationErrorFormatError(
                f"unknown ValidationError Kind {raw_kind!r}; expected one of {list(KINDS)}"
            )
        if kind != "schema" and obj.get("Field", "") in ("", None):
            # The Go port wrote every struct field, so its non-schema rows carry "Field":"".
            # An empty or null Field says nothing and is dropped; a real value is an error below.
            obj = {k: v for k, v in obj.items() if k != "Field"}
        expected = ("Kind", "Field", "Reason") if kind == "schema" else ("Kind", "Reason")
        _require_keys("legacy ValidationError", obj, expected)
        return cls(kind, obj["Reason"], obj.get("Field"))

    @classmethod
    def from_json(cls, data: bytes | str) -> ValidationError:
        """Parse JSON text (UTF-8 bytes or str) in either shape. Duplicate keys are an error."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            obj = json.loads(
                text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
            )
        except ValidationErrorFormatError:
            raise
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ValidationErrorFormatError(f"not a JSON ValidationError: {exc}") from exc
        return cls.from_wire(obj)

    # -- pydantic integration -----------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _coerce,
            serialization=core_schema.plain_serializer_function_ser_schema(_serialize),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        def variant(tag: str, fields: tuple[str, ...]) -> dict[str, Any]:
            body = {
                "type": "object",
                "properties": {name: {"type": "string"} for name in fields},
                "required": list(fields),
                "additionalProperties": False,
            }
            return {
                "type": "object",
                "properties": {tag: body},
                "required": [tag],
                "additionalProperties": False,
            }

        return {
            "title": "ValidationError",
            "description": "A problem found in a payload, externally tagged by its kind "
            '(e.g. {"Schema":{"field":"x","reason":"y"}}).',
            "oneOf": [
                variant(tag, ("field", "reason") if kind == "schema" else ("reason",))
                for kind, tag in _VARIANT_OF_KIND.items()
            ],
        }


def _coerce(value: object) -> ValidationError:
    if isinstance(value, ValidationError):
        return value
    return ValidationError.from_wire(value)


def _serialize(value: ValidationError) -> dict[str, dict[str, str]]:
    return value.to_wire()


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValidationErrorFormatError(
            f"ValidationError {name} must be a string, got {json_type(value)}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate: valid in a Python str, not in UTF-8 or in a Rust String.
        raise ValidationErrorFormatError(
            f"ValidationError {name} is not valid Unicode text: {exc.reason}"
        ) from exc


def _require_keys(where: str, obj: dict[Any, Any], expected: tuple[str, ...]) -> None:
    missing = [key for key in expected if key not in obj]
    if missing:
        raise ValidationErrorFormatError(f"{where}: missing key(s) {missing}")
    extra = sorted(str(key) for key in obj if key not in expected)
    if extra:
        raise ValidationErrorFormatError(f"{where}: unexpected key(s) {extra}")
    for key in expected:
        if not isinstance(obj[key], str):
            raise ValidationErrorFormatError(
                f"{where}: {key} must be a string, got {json_type(obj[key])}"
            )


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationErrorFormatError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValidationErrorFormatError(f"{name} is not JSON")


def json_type(value: object) -> str:
    """The JSON type of a decoded value, for reasons ("expected a string, got a number")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
