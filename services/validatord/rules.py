"""The payload rules that need no roster: SSN guard, phone and email address checks, and the
email and SMS validators (SPEC §6). Pure functions over decoded JSON; results are
`ValidationError` values (data), never exceptions.

Error kinds, used the same way by every validator (docs/validation.md):

- `Schema{field}`: a field is missing, has the wrong JSON type or an unusable format;
- `Completeness`: something required is empty or there is too little of it;
- `Consistency`: the payload contradicts the roster, the demand or itself;
- `Policy`: the payload breaks a house rule (length bounds, SSN-like numbers, excluded workers).

Reasons never quote the offending value when it may be personal data (an SSN-like number, an
address): they name the field and the position instead, because results are logged and reported
to observerd.
"""

from __future__ import annotations

import re
from typing import Any, Final

from lakehouse_common.pii import find_ssn_like
from lakehouse_common.validation_error import ValidationError, json_type

__all__ = [
    "ROOT",
    "SMS_MAX_CHARS",
    "find_ssn_like",
    "is_email_address",
    "is_phone_number",
    "validate_email",
    "validate_sms",
]

# The field path of the payload itself (a payload that is not an object, a reply with no JSON).
ROOT: Final = "$"
# SPEC §6: an SMS is at most 160 characters.
SMS_MAX_CHARS: Final = 160

# -- the SSN guard -------------------------------------------------------------------------------
#
# `find_ssn_like` lives in the core (`lakehouse_common.pii`) so the distillation firewall applies
# the same test (issue 8); it is re-exported here under its old name.


# -- addresses -----------------------------------------------------------------------------------

# NANP: optional country code 1, a 3-digit area code (first digit 2-9, optionally in
# parentheses), then 3 + 4 digits, separated by nothing, a space, `.` or `-`.
_NANP: Final = re.compile(
    r"(?:\+?1[ .\-]?)?(?:\(([2-9]\d{2})\)|([2-9]\d{2}))[ .\-]?\d{3}[ .\-]?\d{4}"
)
# International (E.164 written with groups): `+`, a country code, then digit groups.
_INTERNATIONAL: Final = re.compile(r"\+[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,5}\)|\d{1,8})){1,7}")


def is_phone_number(value: str) -> bool:
    """A NANP number in a usual spelling, or `+<country><number>` with 8–15 digits in all."""
    text = value.strip()
    if _NANP.fullmatch(text):
        return True
    if _INTERNATIONAL.fullmatch(text):
        return 8 <= sum(ch.isdigit() for ch in text) <= 15
    return False


_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL: Final = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}")


def is_email_address(value: str) -> bool:
    """A plain `local@domain.tld` address (no display name), at most 254 characters."""
    return len(value) <= 254 and _EMAIL.fullmatch(value) is not None


# -- helpers shared by the validators ------------------------------------------------------------


def not_an_object(payload: object) -> ValidationError:
    return ValidationError.schema(ROOT, f"expected a JSON object, got {json_type(payload)}")


def required_text(payload: dict[str, Any], field: str, errors: list[ValidationError]) -> str | None:
    """`payload[field]` when it is a string; else a Schema error and None."""
    if field not in payload:
        errors.append(ValidationError.schema(field, "required"))
        return None
    value = payload[field]
    if not isinstance(value, str):
        errors.append(ValidationError.schema(field, f"expected a string, got {json_type(value)}"))
        return None
    return value


def _bounded_text(
    name: str, text: str, max_chars: int, errors: list[ValidationError], *, what: str = ""
) -> None:
    """Completeness when blank, Policy when too long or carrying an SSN-like number."""
    if not text.strip():
        errors.append(ValidationError.completeness(f"{name} is empty"))
        return
    if len(text) > max_chars:
        errors.append(
            ValidationError.policy(
                f"{name} is {len(text)} characters; {what or 'the limit is'} {max_chars}"
            )
        )
    for offset in find_ssn_like(text):
        errors.append(
            ValidationError.policy(
                f"{name} contains a number shaped like a Social Security number "
                f"(ddd-dd-dddd) at character {offset}; never send SSNs"
            )
        )


# -- the validators ------------------------------------------------------------------------------


def validate_email(
    payload: object, *, subject_max_chars: int, body_max_chars: int
) -> list[ValidationError]:
    """`{to, subject, body}`: an address, a non-empty subject and body within their bounds, and
    no SSN-like number in either. Other keys (`cc`, `worker_id`…) are allowed and not checked."""
    if not isinstance(payload, dict):
        return [not_an_object(payload)]
    errors: list[ValidationError] = []
    to = required_text(payload, "to", errors)
    if to is not None and not is_email_address(to.strip()):
        errors.append(ValidationError.schema("to", "not a valid email address"))
    subject = required_text(payload, "subject", errors)
    body = required_text(payload, "body", errors)
    if subject is not None:
        _bounded_text("subject", subject, subject_max_chars, errors, what="at most")
    if body is not None:
        _bounded_text("body", body, body_max_chars, errors, what="at most")
    return errors


def validate_sms(payload: object) -> list[ValidationError]:
    """`{to, body}`: a valid phone number, a non-empty body of at most 160 characters, and no
    SSN-like number in it."""
    if not isinstance(payload, dict):
        return [not_an_object(payload)]
    errors: list[ValidationError] = []
    to = required_text(payload, "to", errors)
    if to is not None and not is_phone_number(to):
        errors.append(ValidationError.schema("to", "not a valid phone number"))
    body = required_text(payload, "body", errors)
    if body is not None:
        _bounded_text("body", body, SMS_MAX_CHARS, errors, what="an SMS holds at most")
    return errors
