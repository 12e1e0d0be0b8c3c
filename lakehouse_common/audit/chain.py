"""The per-subject HMAC-chained audit log: append a row, verify a log (SPEC §8).

A log is a JSONL file, one row per line::

    {subject_id, seq, ts, accessor: {daemon, purpose, trace_id}, action, fields, prev_hmac, hmac}

- ``hmac = hex(HMAC-SHA256(key, canonical_bytes(row)))`` where the canonical bytes leave out
  ``hmac`` itself (:mod:`lakehouse_common.audit.canonical`).
- ``prev_hmac`` is the previous row's ``hmac``; the first row's is :data:`GENESIS` (64 zeros).
- ``seq`` is 1-based: the first row has ``seq`` 1 and row *n* of the file has ``seq`` *n*, so a
  verify error's line number and seq agree on an intact prefix.
- ``accessor.trace_id`` is always written, ``""`` when unknown (the original Go port's
  ``omitempty`` dropped it and produced different bytes).
- ``ts`` is RFC 3339 UTC with all nine nanosecond digits and a ``Z``
  (:func:`now_rfc3339_nanos`); it is a string and is never re-formatted.

Each stored line is the canonical JSON of the full row (``hmac`` included) plus ``\\n``.
:func:`append_row` holds an exclusive ``flock`` on the file while it reads the tip from the
file's tail (no full re-verification), writes the line with one ``write`` and ``fsync``s it, so
concurrent appenders (threads or processes) neither tear lines nor fork the chain.
:func:`verify_log` re-canonicalises every **raw stored line** and reports
``{count, tip, verified, error}``; ``count`` and ``tip`` describe the verified prefix and
``error`` names the first bad row by 1-based line number and seq.

Key rotation (issue 7). Appends and verification take a :class:`~lakehouse_common.audit.keys.
Keyring` (or one key). When a log's tip was signed by a retired key, :func:`append_rows` first
writes an epoch-start row signed by the current key — ``action`` ``"key_rotation"``, ``fields``
``{epoch, key_id, previous_epoch, previous_key_id, previous_tip}`` — which links to the previous
tip like any row, so one chain spans the epochs. :func:`verify_log` verifies the first row under
whichever given key signed it, keeps that key until a rotation row names the next one (which must
be given too, and must record the previous tip and key), and so checks every epoch with its own
key. ``lakehouse audit rotate`` makes rotation eager (issue 18): :func:`start_epoch` writes the
epoch-start row into every log at once, so no log stays wholly signed by a retired key, and
:func:`verify_log` given ``retired_at`` (``key_id → ts`` of each retirement, from the signed
checkpoints) refuses a row signed by a key dated after that key's retirement.

Torn-tail repair (issue 18) appends a ``"repair"`` row (:data:`REPAIR_ACTION`, ``fields``
``{bytes_removed, sha256, reason}``) written by the chain's owner, never by a caller;
:func:`verify_log` lists every repair row it meets in :attr:`VerifyResult.repairs`.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac as hmac_lib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse_common.audit.canonical import (
    CanonicalJSONError,
    RawNumber,
    canonical_bytes,
    canonical_json,
    parse_raw_json,
)
from lakehouse_common.audit.keys import MIN_KEY_BYTES, AuditKeyError, Keyring, key_id
from lakehouse_common.clock import format_rfc3339_nanos, now_rfc3339_nanos
from lakehouse_common.durable import fsync_dir, write_all
from lakehouse_common.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "CHAIN_FIELDS",
    "FIRST_SEQ",
    "GENESIS",
    "AuditChainError",
    "AuditLogNotFound",
    "AuditRowError",
    "REPAIR_ACTION",
    "ROTATION_ACTION",
    "KeyMaterial",
    "VerifyResult",
    "append_row",
    "append_rows",
    "build_row",
    "format_rfc3339_nanos",
    "now_rfc3339_nanos",
    "row_hmac",
    "start_epoch",
    "ts_order",
    "verify_log",
]

# SPEC §8: the first row's prev_hmac.
GENESIS = "0" * 64
# Decision (documented in the module docstring): seq is 1-based.
FIRST_SEQ = 1
# Set by append_row, never by the caller.
CHAIN_FIELDS = ("seq", "prev_hmac", "hmac")
# The action of an epoch-start row (written by the chain itself after a key rotation).
ROTATION_ACTION = "key_rotation"
# The action of a torn-tail repair row (written by catalogd or `lakehouse audit repair`).
REPAIR_ACTION = "repair"
# Actions only the chain's owner writes: a caller's row naming one is refused.
INTERNAL_ACTIONS = frozenset({ROTATION_ACTION, REPAIR_ACTION})

# One key (the original system's only mode) or a keyring spanning rotations.
KeyMaterial = bytes | Keyring

_HEX64_RE = re.compile(r"[0-9a-f]{64}")
# RFC 3339 UTC with an optional 1-9 digit fraction (rows we write always carry 9 digits; rows
# from the original Rust system may carry 0, 3, 6 or 9).
_TS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")
_TAIL_CHUNK = 8192


class AuditRowError(InvalidInput):
    """A row handed to :func:`append_row` does not have the SPEC §8 shape."""


class AuditChainError(Conflict):
    """The log's current tip is unusable (torn last line, bad row, other key): no append."""


class AuditLogNotFound(NotFound):
    """The audit log file to verify does not exist."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify_log`; :meth:`as_dict` is the wire shape (SPEC §8).

    ``count`` and ``tip`` describe the verified prefix (all rows when ``verified``);
    ``line`` is the 1-based line number of the first bad row, ``None`` when verified.
    """

    count: int
    tip: str
    verified: bool
    error: str | None
    line: int | None = None
    # Key epochs the verified prefix spans (1 + the rotation rows in it; 0 for an empty log).
    epochs: int = 0
    # Torn-tail repairs in the verified prefix: {seq, ts, bytes_removed, sha256} each.
    repairs: tuple[dict[str, Any], ...] = ()
    # The hmac of the rows whose seq was asked for (``tips_at``), when they verified.
    tips: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "tip": self.tip,
            "verified": self.verified,
            "error": self.error,
        }


def row_hmac(key: bytes, canonical: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of a row's canonical bytes."""
    return hmac_lib.new(key, canonical, hashlib.sha256).hexdigest()


def build_row(
    subject_id: str,
    *,
    daemon: str,
    purpose: str,
    action: str,
    fields: Any,
    trace_id: str = "",
    ts: str | None = None,
) -> dict[str, Any]:
    """A row without its chain fields, ready for :func:`append_row` (``ts`` defaults to now)."""
    return {
        "subject_id": subject_id,
        "ts": ts if ts is not None else now_rfc3339_nanos(),
        "accessor": {"daemon": daemon, "purpose": purpose, "trace_id": trace_id},
        "action": action,
        "fields": fields,
    }


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(f"audit key is {len(key)} bytes, at least {MIN_KEY_BYTES} required")


def _as_keyring(keys: KeyMaterial) -> Keyring:
    if isinstance(keys, Keyring):
        return keys
    _check_key(keys)
    return Keyring(keys)


def rotation_row(
    subject_id: str,
    *,
    keyring: Keyring,
    previous_key: bytes,
    previous_tip: str,
    daemon: str,
    trace_id: str = "",
    ts: str | None = None,
) -> dict[str, Any]:
    """The epoch-start row written before the first row signed by a new key."""
    previous_id = key_id(previous_key)
    return {
        "subject_id": subject_id,
        "ts": ts if ts is not None else now_rfc3339_nanos(),
        "accessor": {"daemon": daemon, "purpose": ROTATION_ACTION, "trace_id": trace_id},
        "action": ROTATION_ACTION,
        "fields": {
            "epoch": keyring.epoch,
            "key_id": keyring.current_id,
            "previous_epoch": keyring.epoch_of(previous_id) or 0,
            "previous_key_id": previous_id,
            "previous_tip": previous_tip,
        },
    }


def _check_row_shape(row: Mapping[str, Any], *, internal: bool = False) -> None:
    if not isinstance(row, Mapping):
        raise AuditRowError(f"an audit row is an object, got {type(row).__name__}")
    chain = [name for name in CHAIN_FIELDS if name in row]
    if chain:
        raise AuditRowError(f"the chain sets {', '.join(chain)}; the row must not carry them")
    missing = [
        name for name in ("subject_id", "ts", "accessor", "action", "fields") if name not in row
    ]
    if missing:
        raise AuditRowError(f"row is missing {', '.join(missing)}")
    for name in ("subject_id", "ts", "action"):
        if not isinstance(row[name], str):
            raise AuditRowError(f"{name} must be a string")
    if not row["subject_id"]:
        raise AuditRowError("subject_id must not be empty")
    if row["action"] in INTERNAL_ACTIONS and not internal:
        raise AuditRowError(f"action {row['action']!r} is written by the chain itself")
    if not _TS_RE.fullmatch(row["ts"]):
        raise AuditRowError(f"ts must be RFC 3339 UTC ending in Z, got {row['ts']!r}")
    accessor = row["accessor"]
    if not isinstance(accessor, Mapping):
        raise AuditRowError("accessor must be an object {daemon, purpose, trace_id}")
    for name in ("daemon", "purpose", "trace_id"):
        # trace_id is required even when unknown ("" then): dropping it changes the bytes.
        if not isinstance(accessor.get(name), str):
            raise AuditRowError(f"accessor.{name} must be a string (trace_id is '' when unknown)")


def _open_locked(path: Path, flags: int, operation: int) -> int:
    """Open ``path`` and flock it, retrying if the file was replaced while we waited."""
    while True:
        fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, operation)
            held = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _read_last_line(fd: int, size: int) -> bytes:
    """The file's last line (with its newline, if any), reading backwards from the end."""
    buf = b""
    pos = size
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        cut = buf.rfind(b"\n", 0, len(buf) - 1)
        if cut != -1:
            return buf[cut + 1 :]
    return buf


def _read_tip(fd: int, size: int, keyring: Keyring) -> tuple[str, int, bytes | None]:
    """``(hmac, seq, key)`` of the last row, checked under the keyring: ``key`` is the one that
    signed it (``None`` for an empty log). Refuses a torn tip or one no key verifies."""
    if size == 0:
        return GENESIS, FIRST_SEQ - 1, None
    last = _read_last_line(fd, size)
    if not last.endswith(b"\n"):
        raise AuditChainError(
            "the log's last line has no trailing newline (torn write); repair it before appending"
        )
    try:
        row = parse_raw_json(last)
    except CanonicalJSONError as exc:
        raise AuditChainError(f"the log's last row is unreadable: {exc.message}") from exc
    if not isinstance(row, dict):
        raise AuditChainError("the log's last line is not a JSON object")
    tip = row.get("hmac")
    seq = row.get("seq")
    if not isinstance(tip, str) or not _HEX64_RE.fullmatch(tip):
        raise AuditChainError("the log's last row has no valid hmac")
    if not isinstance(seq, RawNumber) or not seq.is_integer_literal() or len(seq.literal) > 30:
        raise AuditChainError("the log's last row has no usable integer seq")
    try:
        canonical = canonical_bytes(row)
    except CanonicalJSONError as exc:
        raise AuditChainError(f"the log's last row is unreadable: {exc.message}") from exc
    for key in keyring.keys():
        if hmac_lib.compare_digest(row_hmac(key, canonical), tip):
            return tip, int(seq), key
    raise AuditChainError(
        "the log's last row does not verify under this key (altered, or another key)"
    )


def append_rows(
    path: str | os.PathLike[str],
    keys: KeyMaterial,
    rows_without_chain_fields: Sequence[Mapping[str, Any]],
    *,
    daemon: str = "catalogd",
    internal: bool = False,
) -> list[dict[str, Any]]:
    """Append rows to the log at ``path`` (created if absent) and return the stored rows.

    Sets ``seq`` and ``prev_hmac`` from the current tip and computes each ``hmac`` with the
    current key; when the tip was signed by a retired key of ``keys``, an epoch-start row
    (:data:`ROTATION_ACTION`, written by ``daemon``) comes first and is returned too. All lines
    are written with one ``write`` and one ``fsync`` under an exclusive ``flock``. Raises
    :class:`AuditRowError` for a malformed row, :class:`AuditKeyError` for a short key and
    :class:`AuditChainError` when the tip is torn, unreadable or verifies under no key given.
    A failed write is truncated away. ``internal`` lets the chain's owner write a
    :data:`REPAIR_ACTION` row.
    """
    keyring = _as_keyring(keys)
    for candidate in rows_without_chain_fields:
        _check_row_shape(candidate, internal=internal)
    if not rows_without_chain_fields:
        return []
    return _append(Path(path), keyring, rows_without_chain_fields, daemon=daemon)


def start_epoch(
    path: str | os.PathLike[str],
    keys: KeyMaterial,
    subject_id: str,
    *,
    daemon: str = "catalogd",
) -> dict[str, Any] | None:
    """Eager rotation: when the tip of the (non-empty) log at ``path`` was signed by a retired
    key of ``keys``, append the epoch-start row now and return it; otherwise write nothing and
    return ``None``. Raises :class:`AuditChainError` like :func:`append_rows`."""
    keyring = _as_keyring(keys)
    log_path = Path(path)
    if not log_path.exists():
        return None
    stored = _append(log_path, keyring, [], daemon=daemon, subject_id=subject_id)
    return stored[0] if stored else None


def _append(
    log_path: Path,
    keyring: Keyring,
    rows_without_chain_fields: Sequence[Mapping[str, Any]],
    *,
    daemon: str,
    subject_id: str | None = None,
) -> list[dict[str, Any]]:
    fd = _open_locked(log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, fcntl.LOCK_EX)
    try:
        size = os.fstat(fd).st_size
        prev_hmac, last_seq, tip_key = _read_tip(fd, size, keyring)
        pending: list[Mapping[str, Any]] = list(rows_without_chain_fields)
        if tip_key is not None and tip_key != keyring.current:
            first = pending[0] if pending else None
            pending.insert(
                0,
                rotation_row(
                    str(first["subject_id"]) if first is not None else str(subject_id),
                    keyring=keyring,
                    previous_key=tip_key,
                    previous_tip=prev_hmac,
                    daemon=daemon,
                    trace_id=str(first["accessor"]["trace_id"]) if first is not None else "",
                ),
            )
        if not pending:
            return []
        stored: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for candidate in pending:
            row: dict[str, Any] = dict(candidate)
            last_seq += 1
            row["seq"] = last_seq
            row["prev_hmac"] = prev_hmac
            row["hmac"] = prev_hmac = row_hmac(keyring.current, canonical_bytes(row))
            stored.append(row)
            chunks.append(canonical_json(row) + b"\n")
        data = b"".join(chunks)
        try:
            write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            # Never leave half a row behind: the next append would refuse a torn tip.
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
        if size == 0:
            fsync_dir(log_path.parent)
        return stored
    finally:
        os.close(fd)  # also releases the flock


def append_row(
    path: str | os.PathLike[str], key: KeyMaterial, row_without_chain_fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Append one row (see :func:`append_rows`) and return it as stored."""
    return append_rows(path, key, [row_without_chain_fields])[-1]


class _BadRow(Exception):
    def __init__(self, why: str, seq: str = "?") -> None:
        super().__init__(why)
        self.why = why
        self.seq = seq


class _Verifier:
    """Walks a log's lines, keeping the key of the current epoch."""

    def __init__(self, keyring: Keyring, retired_at: Mapping[str, str] | None = None) -> None:
        self.keyring = keyring
        self.key: bytes | None = None  # unknown until the first row says which key signed it
        self.epochs = 0
        # key_id → the retirement's ts order, for the keys known to be retired.
        self.retired_at = {
            kid: (ts, ts_order(ts))
            for kid, ts in (retired_at or {}).items()
            if _TS_RE.fullmatch(ts)
        }
        self.repairs: list[dict[str, Any]] = []

    def line(self, line: bytes, prev: str, expected_seq: int) -> str:
        """Check one stored line; returns its hmac or raises :class:`_BadRow`."""
        if not line.endswith(b"\n"):
            raise _BadRow("final line has no trailing newline (torn or partial write)")
        if not line.strip():
            raise _BadRow("blank line")
        try:
            row = parse_raw_json(line)
        except CanonicalJSONError as exc:
            raise _BadRow(f"not a valid row: {exc.message}") from exc
        if not isinstance(row, dict):
            raise _BadRow("not a JSON object")
        seq = row.get("seq")
        seq_text = seq.literal if isinstance(seq, RawNumber) else "?"
        stored = row.get("hmac")
        if not isinstance(stored, str) or not _HEX64_RE.fullmatch(stored):
            raise _BadRow("hmac missing or not 64 lowercase hex digits", seq_text)
        # ``row`` came from parse_raw_json: numbers and strings are the stored text, byte for
        # byte.
        try:
            canonical = canonical_bytes(row)
        except CanonicalJSONError as exc:
            raise _BadRow(f"not a valid row: {exc.message}", seq_text) from exc
        fields = row.get("fields")
        if row.get("action") == ROTATION_ACTION and isinstance(fields, dict):
            key = self._rotation_key(fields, canonical, stored, prev, seq_text)
        else:
            key = self._signing_key(canonical, stored, seq_text)
        link = row.get("prev_hmac")
        if link != prev:
            found = link[:16] + "..." if isinstance(link, str) else repr(link)
            raise _BadRow(
                f"prev_hmac {found} does not link to the previous row's hmac {prev[:16]}... "
                "(row deleted, inserted or reordered)",
                seq_text,
            )
        if not isinstance(seq, RawNumber) or not seq.is_integer_literal():
            raise _BadRow("seq missing or not an integer", seq_text)
        # Compare literals: no int() of an arbitrarily long stored number.
        if seq.literal != str(expected_seq):
            raise _BadRow(f"seq {seq.literal} out of order, expected {expected_seq}", seq_text)
        retired = self.retired_at.get(key_id(key))
        ts = row.get("ts")
        if retired is not None and isinstance(ts, str) and _TS_RE.fullmatch(ts):
            if ts_order(ts) > retired[1]:
                raise _BadRow(
                    f"signed with key {key_id(key)}, retired at {retired[0]}, but dated {ts} "
                    "(a retired key cannot sign new rows)",
                    seq_text,
                )
        if row.get("action") == REPAIR_ACTION and isinstance(fields, dict):
            self.repairs.append(
                {
                    "seq": expected_seq,
                    "ts": ts,
                    "bytes_removed": _plain(fields.get("bytes_removed")),
                    "sha256": fields.get("sha256"),
                }
            )
        if key != self.key:
            self.epochs += 1
        self.key = key
        return stored

    def _signing_key(self, canonical: bytes, stored: str, seq_text: str) -> bytes:
        candidates = self.keyring.keys() if self.key is None else [self.key]
        for key in candidates:
            if hmac_lib.compare_digest(row_hmac(key, canonical), stored):
                return key
        raise _BadRow("hmac mismatch (row altered, or signed with another key)", seq_text)

    def _rotation_key(
        self, fields: dict[str, Any], canonical: bytes, stored: str, prev: str, seq_text: str
    ) -> bytes:
        kid = fields.get("key_id")
        key = self.keyring.by_id(kid) if isinstance(kid, str) else None
        if key is None:
            raise _BadRow(
                f"key rotation to key {kid!r}, which is not among the keys given "
                "(pass every epoch's key)",
                seq_text,
            )
        if not hmac_lib.compare_digest(row_hmac(key, canonical), stored):
            raise _BadRow("hmac mismatch (key rotation row altered)", seq_text)
        if fields.get("previous_tip") != prev:
            raise _BadRow("key rotation row does not record the previous row's hmac", seq_text)
        if self.key is not None and fields.get("previous_key_id") != key_id(self.key):
            raise _BadRow("key rotation row does not name the key of the rows before it", seq_text)
        return key


def ts_order(ts: str) -> tuple[str, int]:
    """A sort key of an RFC 3339 UTC timestamp (any 0-9 fraction digits): ``(seconds, nanos)``."""
    head, _, frac = ts[:-1].partition(".")
    return head, int((frac + "000000000")[:9])


def _plain(value: Any) -> Any:
    if isinstance(value, RawNumber):
        return int(value) if value.is_integer_literal() and len(value.literal) < 20 else None
    return value


def verify_log(
    path: str | os.PathLike[str],
    keys: KeyMaterial,
    *,
    retired_at: Mapping[str, str] | None = None,
    tips_at: Collection[int] = (),
) -> VerifyResult:
    """Verify the chain of the log at ``path`` from its raw stored lines.

    ``keys`` is one key or a keyring (every epoch's key, for a log that spans rotations). An
    empty file verifies with count 0 and tip :data:`GENESIS`. The file's size is taken under a
    shared ``flock`` (appends hold it exclusively until their lines are fsynced), so a
    verification running beside appenders never sees half a row. Raises
    :class:`AuditLogNotFound` when the file does not exist and :class:`AuditKeyError` for a
    short key.

    ``retired_at`` (``key_id → ts``) refuses rows signed by a key dated after its retirement;
    ``tips_at`` asks for the hmac of the rows with those seqs (:attr:`VerifyResult.tips`).
    """
    verifier = _Verifier(_as_keyring(keys), retired_at)
    wanted = set(tips_at)
    tips: dict[int, str] = {}
    log_path = Path(path)
    try:
        handle = log_path.open("rb")
    except FileNotFoundError as exc:
        raise AuditLogNotFound(f"audit log {str(log_path)!r} does not exist") from exc
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        try:
            remaining = os.fstat(handle.fileno()).st_size
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        tip = GENESIS
        count = 0
        line_no = 0
        while remaining > 0:
            line = handle.readline(remaining)
            if not line:
                break
            remaining -= len(line)
            line_no += 1
            try:
                tip = verifier.line(line, tip, FIRST_SEQ + count)
            except _BadRow as bad:
                return VerifyResult(
                    count=count,
                    tip=tip,
                    verified=False,
                    error=f"line {line_no} (seq {bad.seq}): {bad.why}",
                    line=line_no,
                    epochs=verifier.epochs,
                    repairs=tuple(verifier.repairs),
                    tips=tips,
                )
            count += 1
            if count in wanted:
                tips[count] = tip
    return VerifyResult(
        count=count,
        tip=tip,
        verified=True,
        error=None,
        epochs=verifier.epochs,
        repairs=tuple(verifier.repairs),
        tips=tips,
    )
