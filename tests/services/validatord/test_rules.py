"""The roster-free rules, in-process: the SSN guard (table-driven and property-based), phone
and email address checks, and the email/SMS validators' exact error shapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_common.validation_error import ValidationError
from services.validatord.rules import (
    find_ssn_like,
    is_email_address,
    is_phone_number,
    validate_email,
    validate_sms,
)
from tests.support.validate import PHONE_TEXTS, SSN_TEXTS


class TestSsnGuard:
    def test_tables_are_big_enough(self) -> None:
        assert len(SSN_TEXTS) >= 20 and len(PHONE_TEXTS) >= 20

    @pytest.mark.parametrize("text", SSN_TEXTS)
    def test_flags_ssn_like_numbers_in_prose(self, text: str) -> None:
        assert find_ssn_like(text), text

    @pytest.mark.parametrize("text", PHONE_TEXTS)
    def test_never_flags_phone_numbers(self, text: str) -> None:
        assert find_ssn_like(text) == [], text

    def test_reports_the_offset_of_each_number(self) -> None:
        text = "a 123-45-6789 b 987 65 4321"
        assert find_ssn_like(text) == [2, 16]

    @settings(max_examples=200)
    @given(
        area=st.integers(200, 999),
        exchange=st.integers(0, 999),
        line=st.integers(0, 9999),
        style=st.sampled_from(
            ["{a}-{e}-{l}", "({a}) {e}-{l}", "+1 {a} {e} {l}", "{a} {e} {l}", "{a}.{e}.{l}"]
        ),
        before=st.sampled_from(["", "call ", "Phone: ", "(", "at "]),
        after=st.sampled_from(["", ".", " today", ")", ", thanks"]),
    )
    def test_nanp_numbers_in_any_spelling_never_trip_it(
        self, area: int, exchange: int, line: int, style: str, before: str, after: str
    ) -> None:
        phone = style.format(a=f"{area:03d}", e=f"{exchange:03d}", l=f"{line:04d}")
        assert find_ssn_like(f"{before}{phone}{after}") == []

    @settings(max_examples=200)
    @given(
        area=st.integers(0, 999),
        group=st.integers(0, 99),
        serial=st.integers(0, 9999),
        seps=st.sampled_from(["--", "  ", "- ", " -"]),
        before=st.text(alphabet="abc XYZ:,;(\n", max_size=12),
        after=st.text(alphabet="abc XYZ.,;)\n", max_size=12),
    )
    def test_ssn_shapes_in_prose_always_trip_it(
        self, area: int, group: int, serial: int, seps: str, before: str, after: str
    ) -> None:
        if before and before[-1].isalnum():
            before += " "
        if after and after[0].isalnum():
            after = " " + after
        ssn = f"{area:03d}{seps[0]}{group:02d}{seps[1]}{serial:04d}"
        assert find_ssn_like(f"{before}{ssn}{after}") == [len(before)]


class TestAddresses:
    @pytest.mark.parametrize(
        "phone",
        ["555-123-4567", "(555) 123-4567", "+1 555 123 4567", "5551234567", "+44 20 7946 0958"],
    )
    def test_valid_phone_numbers(self, phone: str) -> None:
        assert is_phone_number(phone)

    @pytest.mark.parametrize(
        "phone", ["", "hello", "123-45-6789", "155-123-4567", "(555 123-4567", "+1", "555-1234"]
    )
    def test_invalid_phone_numbers(self, phone: str) -> None:
        assert not is_phone_number(phone)

    @pytest.mark.parametrize("address", ["ana.diaz@example.com", "a+b@mail.example.org"])
    def test_valid_email_addresses(self, address: str) -> None:
        assert is_email_address(address)

    @pytest.mark.parametrize(
        "address", ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com"]
    )
    def test_invalid_email_addresses(self, address: str) -> None:
        assert not is_email_address(address)


def wire(errors: list[ValidationError]) -> list[dict[str, dict[str, str]]]:
    return [e.to_wire() for e in errors]


class TestEmailRules:
    def check(self, payload: object) -> list[dict[str, dict[str, str]]]:
        return wire(validate_email(payload, subject_max_chars=20, body_max_chars=50))

    def test_missing_and_mistyped_fields_are_schema_errors(self) -> None:
        assert self.check({"subject": 3, "body": "hi"}) == [
            {"Schema": {"field": "to", "reason": "required"}},
            {"Schema": {"field": "subject", "reason": "expected a string, got a number"}},
        ]

    def test_length_bounds_are_policy_errors(self) -> None:
        errors = self.check({"to": "a@example.com", "subject": "s" * 21, "body": "b" * 51})
        assert errors == [
            {"Policy": {"reason": "subject is 21 characters; at most 20"}},
            {"Policy": {"reason": "body is 51 characters; at most 50"}},
        ]


class TestSmsRules:
    def test_exactly_160_characters_is_valid(self) -> None:
        assert validate_sms({"to": "555-123-4567", "body": "x" * 160}) == []

    def test_161_characters_is_a_policy_error(self) -> None:
        assert wire(validate_sms({"to": "555-123-4567", "body": "x" * 161})) == [
            {"Policy": {"reason": "body is 161 characters; an SMS holds at most 160"}}
        ]
