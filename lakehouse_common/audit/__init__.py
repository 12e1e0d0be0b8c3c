"""Canonical JSON and the HMAC-chained, per-subject audit log (SPEC §8).

- :mod:`~lakehouse_common.audit.canonical`: the bytes a row's HMAC signs.
- :mod:`~lakehouse_common.audit.chain`: append a row, verify a log.
- :mod:`~lakehouse_common.audit.keys`: the key file (at least 32 raw bytes).
- :mod:`~lakehouse_common.audit.cli`: ``lakehouse audit verify`` (offline verification).
"""

from lakehouse_common.audit.canonical import (
    CanonicalJSONError,
    RawNumber,
    canonical_bytes,
    canonical_bytes_from_raw,
    canonical_json,
    parse_raw_json,
)
from lakehouse_common.audit.chain import (
    CHAIN_FIELDS,
    FIRST_SEQ,
    GENESIS,
    AuditChainError,
    AuditLogNotFound,
    AuditRowError,
    VerifyResult,
    append_row,
    build_row,
    format_rfc3339_nanos,
    now_rfc3339_nanos,
    row_hmac,
    verify_log,
)
from lakehouse_common.audit.keys import MIN_KEY_BYTES, AuditKeyError, load_key

__all__ = [
    "CHAIN_FIELDS",
    "FIRST_SEQ",
    "GENESIS",
    "MIN_KEY_BYTES",
    "AuditChainError",
    "AuditKeyError",
    "AuditLogNotFound",
    "AuditRowError",
    "CanonicalJSONError",
    "RawNumber",
    "VerifyResult",
    "append_row",
    "build_row",
    "canonical_bytes",
    "canonical_bytes_from_raw",
    "canonical_json",
    "format_rfc3339_nanos",
    "load_key",
    "now_rfc3339_nanos",
    "parse_raw_json",
    "row_hmac",
    "verify_log",
]
