"""Personal-data patterns shared by the validators and the distillation firewall (SPEC §6, §7).

- :func:`find_ssn_like`: the SSN guard of validatord's email and SMS rules (moved here from
  ``services/validatord/rules.py`` unchanged, so the export firewall applies the very same
  test; issue 8).
- :func:`find_phone_numbers` / :func:`find_email_addresses`: every phone number (normalised to
  its ten NANP digits) and every email address (case-folded) written in a text, for the firewall
  to look up in the roster's contacts. Finding them is deliberately generous (any usual
  spelling); what makes a hit personal data is the roster lookup, not the pattern.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["find_email_addresses", "find_phone_numbers", "find_ssn_like", "phone_digits"]

# -- the SSN guard -------------------------------------------------------------------------------
#
# `ddd-dd-dddd` or `ddd dd dddd` (either separator at each place) standing alone in prose. Phone
# numbers never match it: NANP numbers group 3-3-4 (`555-123-4567`, `(555) 123-4567`,
# `+1 555 123 4567`) and the lookarounds refuse a match that continues a longer digit run. Not
# preceded by a word character, `+` or `-` (part codes `AB123-45-6789`, `+1-…`), nor by
# `<digit>.` (`555.123-45-6789`); not followed by a word character or `-<digit>`.
_SSN: Final = re.compile(r"(?<![\w+\-])(?<!\d\.)\d{3}[- ]\d{2}[- ]\d{4}(?![\w]|-\d)")
# A match right after an international or parenthesised prefix (`+31 612 34 5678`,
# `(020) 123 45 6789`) is the tail of a phone number written in a national grouping.
_PHONE_PREFIX: Final = re.compile(r"(?:\+\d{1,3}|\(\d{1,5}\))[ .\-]?$")
# Nine bare digits are an SSN only when the text says so ("SSN: 123456789"); a 9-digit run alone
# is as likely an order number or a ZIP+4.
_SSN_KEYWORD: Final = re.compile(
    r"\b(?:ssn|ss#|social\s+security(?:\s+(?:number|no\.?|#))?)(?:\W|is|number){0,12}?"
    r"(?<!\d)\d{9}(?!\d)",
    re.IGNORECASE,
)


def find_ssn_like(text: str) -> list[int]:
    """Character offsets of every SSN-like number in `text` (empty: none)."""
    found: list[int] = []
    for match in _SSN.finditer(text):
        if _PHONE_PREFIX.search(text, max(0, match.start() - 8), match.start()):
            continue
        found.append(match.start())
    for match in _SSN_KEYWORD.finditer(text):
        digits = match.end() - 9
        if digits not in found:
            found.append(digits)
    return sorted(found)


# -- contacts ------------------------------------------------------------------------------------

# A NANP number in any usual spelling (`(312) 555-0123`, `312-555-0123`, `312.555.0123`,
# `+1 312 555 0123`, `3125550123`), not glued to a longer digit run.
_PHONE: Final = re.compile(
    r"(?<![\d])(?:\+?1[ .\-]?)?(?:\(\d{3}\)|\d{3})[ .\-]?\d{3}[ .\-]?\d{4}(?!\d)"
)
_EMAIL: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*\.[A-Za-z]{2,63}"
)


def phone_digits(value: str) -> str:
    """The ten NANP digits of a phone number as written (`(312) 555-0123` → `3125550123`); ""
    when it does not hold ten digits (after dropping a leading country code 1)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if len(digits) == 10 else ""


def find_phone_numbers(text: str) -> list[str]:
    """The ten-digit form of every NANP-shaped phone number in `text`, in order."""
    out = []
    for match in _PHONE.finditer(text):
        digits = phone_digits(match.group())
        if digits:
            out.append(digits)
    return out


def find_email_addresses(text: str) -> list[str]:
    """Every email address in `text`, case-folded, in order."""
    return [match.group().casefold() for match in _EMAIL.finditer(text)]
