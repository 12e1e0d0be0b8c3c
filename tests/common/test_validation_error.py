"""ValidationError wire format (SPEC §3): exact serde bytes, legacy shape, rejects, pydantic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_common.errors import InvalidInput
from lakehouse_common.validation_error import (
    KINDS,
    Kind,
    ValidationError,
    ValidationErrorFormatError,
)

GOLDEN_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "validation_error_golden.json"
GOLDEN: dict[str, Any] = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
ENCODE_CASES: list[dict[str, Any]] = GOLDEN["encode"]
LEGACY_CASES: list[dict[str, Any]] = GOLDEN["legacy"]
REJECT_CASES: list[dict[str, Any]] = GOLDEN["reject"]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def _golden_value(case: dict[str, Any]) -> ValidationError:
    return ValidationError(case["kind"], case["reason"], case["field"])


class TestPinnedBytes:
    """The exact bytes the original Rust system (serde_json) writes for each variant."""

    def test_schema_bytes(self) -> None:
        assert (
            ValidationError.schema("x", "y").to_json() == b'{"Schema":{"field":"x","reason":"y"}}'
        )

    def test_completeness_bytes(self) -> None:
        assert ValidationError.completeness("y").to_json() == b'{"Completeness":{"reason":"y"}}'

    def test_consistency_bytes(self) -> None:
        assert ValidationError.consistency("y").to_json() == b'{"Consistency":{"reason":"y"}}'

    def test_policy_bytes(self) -> None:
        assert ValidationError.policy("y").to_json() == b'{"Policy":{"reason":"y"}}'

    def test_non_ascii_is_raw_utf8(self) -> None:
        assert ValidationError.policy("Zoë 🙂").to_json() == (
            '{"Policy":{"reason":"Zoë 🙂"}}'.encode()
        )

    @pytest.mark.parametrize("case", ENCODE_CASES, ids=_ids(ENCODE_CASES))
    def test_golden_bytes(self, case: dict[str, Any]) -> None:
        assert _golden_value(case).to_json() == case["bytes"].encode("utf-8")

    @pytest.mark.parametrize("case", ENCODE_CASES, ids=_ids(ENCODE_CASES))
    def test_golden_bytes_parse_back_to_the_same_value(self, case: dict[str, Any]) -> None:
        assert ValidationError.from_json(case["bytes"].encode("utf-8")) == _golden_value(case)

    def test_every_variant_has_a_golden_case(self) -> None:
        assert {case["kind"] for case in ENCODE_CASES} == set(KINDS)


class TestValues:
    def test_constructors_set_kind_field_and_reason(self) -> None:
        assert ValidationError.schema("f", "r") == ValidationError("schema", "r", "f")
        assert ValidationError.completeness("r") == ValidationError("completeness", "r")
        assert ValidationError.consistency("r") == ValidationError("consistency", "r")
        assert ValidationError.policy("r") == ValidationError("policy", "r", None)

    def test_variant_names_the_wire_tag(self) -> None:
        assert [
            ValidationError(kind, "r", "f" if kind == "schema" else None).variant for kind in KINDS
        ] == [
            "Schema",
            "Completeness",
            "Consistency",
            "Policy",
        ]

    def test_to_wire_orders_field_before_reason(self) -> None:
        assert list(ValidationError.schema("f", "r").to_wire()["Schema"]) == ["field", "reason"]

    def test_values_are_immutable_and_hashable(self) -> None:
        error = ValidationError.policy("r")
        with pytest.raises(AttributeError):
            error.reason = "other"  # type: ignore[misc]
        assert len({error, ValidationError.policy("r")}) == 1

    def test_schema_without_field_is_refused(self) -> None:
        with pytest.raises(ValidationErrorFormatError, match="field"):
            ValidationError("schema", "r")

    def test_field_on_a_non_schema_kind_is_refused(self) -> None:
        with pytest.raises(ValidationErrorFormatError, match="no field"):
            ValidationError("policy", "r", "f")

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ValidationErrorFormatError, match="unknown"):
            ValidationError("format", "r")  # type: ignore[arg-type]

    def test_non_string_reason_is_refused(self) -> None:
        with pytest.raises(ValidationErrorFormatError, match="reason must be a string"):
            ValidationError("policy", 5)  # type: ignore[arg-type]

    def test_lone_surrogate_is_refused(self) -> None:
        # Valid in a Python str, impossible in UTF-8 or a Rust String.
        with pytest.raises(ValidationErrorFormatError, match="not valid Unicode"):
            ValidationError.policy("\ud800")

    def test_format_error_is_a_value_error_and_an_invalid_input(self) -> None:
        assert issubclass(ValidationErrorFormatError, ValueError)
        assert issubclass(ValidationErrorFormatError, InvalidInput)
        assert ValidationErrorFormatError("x").status == 400


class TestLegacyShape:
    @pytest.mark.parametrize("case", LEGACY_CASES, ids=_ids(LEGACY_CASES))
    def test_legacy_input_parses_to_the_tagged_value(self, case: dict[str, Any]) -> None:
        assert ValidationError.from_wire(case["input"]).to_wire() == case["wire"]

    def test_legacy_schema_keeps_its_field(self) -> None:
        parsed = ValidationError.from_wire({"Kind": "schema", "Field": "x", "Reason": "y"})
        assert parsed == ValidationError.schema("x", "y")

    def test_legacy_input_is_written_back_in_the_tagged_shape(self) -> None:
        parsed = ValidationError.from_json(b'{"Kind":"Policy","Field":"","Reason":"y"}')
        assert parsed.to_json() == b'{"Policy":{"reason":"y"}}'


class TestRejected:
    @pytest.mark.parametrize("case", REJECT_CASES, ids=_ids(REJECT_CASES))
    def test_malformed_input_is_an_error(self, case: dict[str, Any]) -> None:
        with pytest.raises(ValidationErrorFormatError):
            ValidationError.from_wire(case["input"])

    def test_unknown_variant_is_named_in_the_error(self) -> None:
        with pytest.raises(ValidationErrorFormatError, match="unknown ValidationError variant"):
            ValidationError.from_wire({"Format": {"reason": "y"}})

    def test_duplicate_keys_are_an_error(self) -> None:
        with pytest.raises(ValidationErrorFormatError, match="duplicate key"):
            ValidationError.from_json(b'{"Policy":{"reason":"a","reason":"b"}}')

    def test_invalid_utf8_is_an_error(self) -> None:
        with pytest.raises(ValidationErrorFormatError):
            ValidationError.from_json(b'{"Policy":{"reason":"\xff"}}')

    def test_text_that_is_not_json_is_an_error(self) -> None:
        with pytest.raises(ValidationErrorFormatError):
            ValidationError.from_json("Policy: y")

    def test_nan_is_not_json(self) -> None:
        with pytest.raises(ValidationErrorFormatError):
            ValidationError.from_json('{"Policy":{"reason":NaN}}')


class ValidateResponse(pydantic.BaseModel):
    valid: bool
    errors: list[ValidationError]


class TestPydanticIntegration:
    def test_model_serialises_to_the_exact_wire_shape(self) -> None:
        response = ValidateResponse(
            valid=False,
            errors=[ValidationError.schema("x", "y"), ValidationError.policy("é")],
        )
        assert (
            response.model_dump_json().encode()
            == (
                '{"valid":false,"errors":[{"Schema":{"field":"x","reason":"y"}},'
                '{"Policy":{"reason":"é"}}]}'
            ).encode()
        )

    def test_python_dump_uses_the_wire_shape_too(self) -> None:
        response = ValidateResponse(valid=False, errors=[ValidationError.completeness("y")])
        assert response.model_dump() == {
            "valid": False,
            "errors": [{"Completeness": {"reason": "y"}}],
        }

    def test_model_validates_tagged_and_legacy_input(self) -> None:
        response = ValidateResponse.model_validate(
            {
                "valid": False,
                "errors": [
                    {"Consistency": {"reason": "a"}},
                    {"Kind": "SCHEMA", "Field": "f", "Reason": "b"},
                    ValidationError.policy("c"),
                ],
            }
        )
        assert response.errors == [
            ValidationError.consistency("a"),
            ValidationError.schema("f", "b"),
            ValidationError.policy("c"),
        ]

    def test_json_round_trip_through_the_model(self) -> None:
        response = ValidateResponse(valid=False, errors=[ValidationError.schema("f", 'q"\n')])
        assert ValidateResponse.model_validate_json(response.model_dump_json()) == response

    def test_unknown_variant_is_a_pydantic_validation_error(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="unknown ValidationError variant"):
            ValidateResponse.model_validate({"valid": True, "errors": [{"Bogus": {"reason": "y"}}]})

    def test_json_schema_describes_the_four_variants(self) -> None:
        schema = pydantic.TypeAdapter(ValidationError).json_schema()
        assert [next(iter(option["required"])) for option in schema["oneOf"]] == [
            "Schema",
            "Completeness",
            "Consistency",
            "Policy",
        ]

    async def test_fastapi_response_model_answers_the_wire_shape(self) -> None:
        app = FastAPI()

        @app.post("/validate", response_model=ValidateResponse)
        async def validate(body: ValidateResponse) -> ValidateResponse:
            return ValidateResponse(valid=False, errors=[*body.errors, ValidationError.policy("p")])

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post(
                "/validate",
                json={"valid": True, "errors": [{"Kind": "schema", "Field": "x", "Reason": "y"}]},
            )
            refused = await client.post("/validate", json={"valid": True, "errors": [{"Nope": {}}]})
            openapi = await client.get("/openapi.json")
        assert answer.status_code == 200
        assert answer.json() == {
            "valid": False,
            "errors": [{"Schema": {"field": "x", "reason": "y"}}, {"Policy": {"reason": "p"}}],
        }
        assert refused.status_code == 422
        assert openapi.status_code == 200
        assert "oneOf" in openapi.text


# -- properties --------------------------------------------------------------------------------

# Text rich in what JSON escapes, plus anything else (hypothesis never yields lone surrogates).
_text = st.text(max_size=40) | st.text(
    alphabet='"\\\x00\x01\x1f\x7f\b\f\n\r\t é🙂\u2028', max_size=20
)


@st.composite
def _validation_errors(draw: st.DrawFn) -> ValidationError:
    kind: Kind = draw(st.sampled_from(KINDS))
    return ValidationError(kind, draw(_text), draw(_text) if kind == "schema" else None)


_SERDE_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _serde_string(text: str) -> str:
    """serde_json's string writer, written out independently of the json module."""
    escaped = (
        _SERDE_SHORT_ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch)
        for ch in text
    )
    return '"' + "".join(escaped) + '"'


@given(error=_validation_errors())
def test_bytes_match_an_independent_model_of_serde_json(error: ValidationError) -> None:
    members = [("field", error.field)] if error.field is not None else []
    members.append(("reason", error.reason))
    body = ",".join(f'"{name}":{_serde_string(value)}' for name, value in members)
    assert error.to_json() == ('{"' + error.variant + '":{' + body + "}}").encode("utf-8")


@given(error=_validation_errors())
def test_wire_and_json_round_trip(error: ValidationError) -> None:
    assert ValidationError.from_wire(error.to_wire()) == error
    assert ValidationError.from_json(error.to_json()) == error
    assert json.loads(error.to_json()) == error.to_wire()


@given(error=_validation_errors(), spelling=st.sampled_from([str.lower, str.upper, str.title]))
def test_legacy_shape_round_trips(error: ValidationError, spelling: Any) -> None:
    legacy: dict[str, str] = {"Kind": spelling(error.kind), "Reason": error.reason}
    if error.field is not None:
        legacy["Field"] = error.field
    assert ValidationError.from_wire(legacy) == error


@given(errors=st.lists(_validation_errors(), max_size=5))
def test_pydantic_round_trip(errors: list[ValidationError]) -> None:
    response = ValidateResponse(valid=not errors, errors=errors)
    dumped = json.loads(response.model_dump_json())
    assert dumped["errors"] == [error.to_wire() for error in errors]
    assert ValidateResponse.model_validate_json(response.model_dump_json()) == response
