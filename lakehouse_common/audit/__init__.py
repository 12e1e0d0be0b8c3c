"""Canonical JSON and the HMAC-chained, per-subject audit log (SPEC §8).

- :mod:`~lakehouse_common.audit.canonical`: the bytes a row's HMAC signs.
- :mod:`~lakehouse_common.audit.chain`: append a row, verify a log.
- :mod:`~lakehouse_common.audit.keys`: the key file (at least 32 raw bytes, private), keyrings,
  generation and rotation.
- :mod:`~lakehouse_common.audit.access`: :class:`AccessAuditor`, how a daemon records a PII read
  (one batched call to catalogd per request) before it answers.
- :mod:`~lakehouse_common.audit.signing`, :mod:`~lakehouse_common.audit.checkpoint`,
  :mod:`~lakehouse_common.audit.witness`, :mod:`~lakehouse_common.audit.anchors`: signed
  checkpoints of the logs' heads, the witness they are published to, and verifying a log
  against them (issue 18); :mod:`~lakehouse_common.audit.repair`: torn-tail repair. Import them
  by module (they load ``cryptography``/``boto3``, which most daemons never need).
- :mod:`~lakehouse_common.cli.audit`: ``lakehouse audit verify|verify-all|keygen|rotate``.
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
    REPAIR_ACTION,
    ROTATION_ACTION,
    AuditChainError,
    AuditLogNotFound,
    AuditRowError,
    KeyMaterial,
    VerifyResult,
    append_row,
    append_rows,
    build_row,
    format_rfc3339_nanos,
    now_rfc3339_nanos,
    row_hmac,
    start_epoch,
    ts_order,
    verify_log,
)
from lakehouse_common.audit.keys import (
    MIN_KEY_BYTES,
    AuditKeyError,
    Keyring,
    generate_key,
    key_id,
    load_key,
    load_keyring,
    load_private_key,
    rotate_key,
)

__all__ = [
    "CHAIN_FIELDS",
    "FIRST_SEQ",
    "GENESIS",
    "MIN_KEY_BYTES",
    "REPAIR_ACTION",
    "ROTATION_ACTION",
    "AuditChainError",
    "AuditKeyError",
    "AuditLogNotFound",
    "AuditRowError",
    "CanonicalJSONError",
    "KeyMaterial",
    "Keyring",
    "RawNumber",
    "VerifyResult",
    "append_row",
    "append_rows",
    "build_row",
    "canonical_bytes",
    "canonical_bytes_from_raw",
    "canonical_json",
    "format_rfc3339_nanos",
    "generate_key",
    "key_id",
    "load_key",
    "load_keyring",
    "load_private_key",
    "now_rfc3339_nanos",
    "parse_raw_json",
    "rotate_key",
    "row_hmac",
    "start_epoch",
    "ts_order",
    "verify_log",
]
