"""Signed checkpoints of the subject audit logs (SPEC §8 "Anchored heads", issue 18).

A chain alone cannot see a clean cut of its last rows, a deleted or emptied file, an older copy
put back, or a dormant log rewritten with a leaked key. catalogd therefore appends, at most
every ``audit.checkpoint_interval_s`` and at shutdown, one line to ``<data_dir>/subjects/
checkpoints.jsonl``::

    {"heads":{"WORKER-1":[3,"<tip>"]},"prev":"<sha256 of the previous line>","seq":7,
     "sig":"<Ed25519 signature, hex>","ts":"2026-…Z"}

- ``heads`` holds ``[count, tip]`` of every subject whose log changed since the previous
  checkpoint (so one subject's history is checkable on its own: the newest checkpoint naming it);
- ``prev`` is the SHA-256 (hex) of the previous stored line, 64 zeros for the first: the
  checkpoint log is itself a chain, and its newest line is what the witness holds;
- ``retired`` (only in a checkpoint written by ``lakehouse audit rotate``) maps the retired HMAC
  key's id to the time of its retirement: a row that key signs dated later is refused;
- ``sig`` is the Ed25519 signature (hex) of the canonical bytes of the line without ``sig``
  (the same canonical rules as the audit rows).

:class:`CheckpointLog` reads a checkpoint log incrementally (``refresh`` consumes the lines
appended since the last look, so catalogd sees checkpoints written by the CLI too, and notices a
log that shrank), verifies every line with the public key and keeps, per subject, the checkpoint
anchoring the most rows. :meth:`CheckpointLog.append` writes one under an exclusive ``flock``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse_common.audit.canonical import (
    CanonicalJSONError,
    RawNumber,
    canonical_json,
    parse_raw_json,
)
from lakehouse_common.audit.chain import (
    _HEX64_RE,
    _TS_RE,
    GENESIS,
    _open_locked,
    _read_last_line,
)
from lakehouse_common.audit.signing import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    sign_hex,
    verify_hex,
)
from lakehouse_common.clock import now_rfc3339_nanos
from lakehouse_common.durable import fsync_dir, make_dirs_durably, write_all
from lakehouse_common.errors import Conflict

__all__ = [
    "CHECKPOINT_LOG",
    "Anchor",
    "CheckpointError",
    "CheckpointLog",
    "line_digest",
    "repair_checkpoint_tail",
]

# The checkpoint log's name, beside the `audit/` directory of subject logs.
CHECKPOINT_LOG = "checkpoints.jsonl"


class CheckpointError(Conflict):
    """The checkpoint log cannot be extended (torn, or a checkpoint in it does not verify)."""


def line_digest(line: bytes) -> str:
    """What ``prev`` names: SHA-256 (hex) of a stored line without its newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass(frozen=True, slots=True)
class Anchor:
    """A subject's head as a checkpoint recorded it."""

    checkpoint: int
    ts: str
    count: int
    tip: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.checkpoint, "ts": self.ts, "count": self.count, "tip": self.tip}


class _BadCheckpoint(Exception):
    pass


def _int(value: Any) -> int | None:
    if isinstance(value, RawNumber) and value.is_integer_literal() and len(value.literal) < 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


class CheckpointLog:
    """The verified prefix of a checkpoint log and the anchors it holds."""

    def __init__(self, path: str | os.PathLike[str], public_key: Ed25519PublicKey | None) -> None:
        self.path = Path(path)
        self.public_key = public_key
        self.count = 0  # checkpoints verified
        self.offset = 0  # bytes consumed
        self.digests: list[str] = []  # line_digest of each verified checkpoint
        self.last_ts = ""
        self.last_line = b""  # the newest verified checkpoint's stored line (what is published)
        self.by_subject: dict[str, Anchor] = {}
        self.retired: dict[str, str] = {}
        self.error: str | None = None  # the first bad checkpoint (nothing after it is used)
        self.torn = False  # the file ends in a line without newline (not consumed)
        # One reader/writer of this object's state at a time (catalogd's writer thread and its
        # verify route both refresh it).
        self._lock = threading.RLock()

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], public_key: Ed25519PublicKey | None
    ) -> CheckpointLog:
        log = cls(path, public_key)
        log.refresh()
        return log

    @property
    def head_digest(self) -> str:
        return self.digests[-1] if self.digests else GENESIS

    @property
    def exists(self) -> bool:
        return self.path.exists()

    # -- reading --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Consume the complete lines appended since the last look."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        if self.error is not None:
            return
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            if self.count:
                self.error = (
                    f"the checkpoint log {self.path} is missing; it held {self.count} checkpoints"
                )
            return
        with handle:
            self._consume_from(handle.fileno(), os.fstat(handle.fileno()).st_size)

    def _consume_from(self, fd: int, size: int) -> None:
        if size < self.offset:
            self.error = (
                f"the checkpoint log shrank from {self.offset} to {size} bytes after checkpoint "
                f"{self.count} (cut or replaced)"
            )
            return
        data = os.pread(fd, size - self.offset, self.offset) if size > self.offset else b""
        self.torn = bool(data) and not data.endswith(b"\n")
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end == -1:
                return
            line = data[start:end]
            try:
                self._consume(line)
            except _BadCheckpoint as bad:
                self.error = f"checkpoint line {self.count + 1}: {bad}"
                return
            self.offset += end + 1 - start
            start = end + 1

    def _consume(self, line: bytes) -> None:
        try:
            row = parse_raw_json(line)
        except CanonicalJSONError as exc:
            raise _BadCheckpoint(f"not a checkpoint: {exc.message}") from exc
        if not isinstance(row, dict):
            raise _BadCheckpoint("not a JSON object")
        seq = _int(row.get("seq"))
        if seq != self.count + 1:
            raise _BadCheckpoint(f"seq {row.get('seq')!r}, expected {self.count + 1}")
        if row.get("prev") != self.head_digest:
            raise _BadCheckpoint(
                "prev does not name the previous checkpoint (checkpoint removed, inserted or "
                "reordered)"
            )
        ts = row.get("ts")
        if not isinstance(ts, str) or not _TS_RE.fullmatch(ts):
            raise _BadCheckpoint("ts is not an RFC 3339 UTC timestamp")
        sig = row.get("sig")
        if not isinstance(sig, str):
            raise _BadCheckpoint("sig missing")
        if self.public_key is not None:
            try:
                signed = canonical_json({k: v for k, v in row.items() if k != "sig"})
            except CanonicalJSONError as exc:
                raise _BadCheckpoint(f"not a checkpoint: {exc.message}") from exc
            if not verify_hex(self.public_key, sig, signed):
                raise _BadCheckpoint(
                    "signature does not verify under the checkpoint public key (altered, or "
                    "signed by another key)"
                )
        heads = row.get("heads")
        if not isinstance(heads, dict):
            raise _BadCheckpoint("heads is not an object")
        parsed: dict[str, tuple[int, str]] = {}
        for subject_id, head in heads.items():
            count = _int(head[0]) if isinstance(head, list) and len(head) == 2 else None
            tip = head[1] if isinstance(head, list) and len(head) == 2 else None
            if count is None or count < 0 or not isinstance(tip, str):
                raise _BadCheckpoint(f"head of {subject_id!r} is not [count, tip]")
            if count and not _HEX64_RE.fullmatch(tip):
                raise _BadCheckpoint(f"tip of {subject_id!r} is not 64 hex digits")
            parsed[subject_id] = (count, tip)
        retired = row.get("retired", {})
        if not isinstance(retired, dict) or not all(
            isinstance(v, str) and _TS_RE.fullmatch(v) for v in retired.values()
        ):
            raise _BadCheckpoint("retired is not {key_id: ts}")
        # Consumed: nothing above raised.
        self.count = seq
        self.digests.append(line_digest(line))
        self.last_line = line
        self.last_ts = ts
        for subject_id, (count, tip) in parsed.items():
            known = self.by_subject.get(subject_id)
            if known is None or count >= known.count:
                self.by_subject[subject_id] = Anchor(seq, ts, count, tip)
        self.retired.update(retired)

    # -- writing --------------------------------------------------------------------------

    def append(
        self,
        key: Ed25519PrivateKey,
        heads: Mapping[str, tuple[int, str]],
        *,
        retired: Mapping[str, str] | None = None,
        ts: str | None = None,
    ) -> bytes:
        """Sign and append one checkpoint (under an exclusive ``flock``, fsynced); answers the
        stored line (without newline). Raises :class:`CheckpointError` when the log is torn or
        holds a checkpoint that does not verify: a bad log is never extended."""
        with self._lock:
            return self._append(key, heads, retired=retired, ts=ts)

    def _append(
        self,
        key: Ed25519PrivateKey,
        heads: Mapping[str, tuple[int, str]],
        *,
        retired: Mapping[str, str] | None,
        ts: str | None,
    ) -> bytes:
        make_dirs_durably(self.path.parent)
        fd = _open_locked(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            self._consume_from(fd, size)
            if self.error is not None:
                raise CheckpointError(f"the checkpoint log is not extended: {self.error}")
            if self.torn:
                raise CheckpointError(
                    "the checkpoint log's last line is torn; repair it (catalogd does at start)"
                )
            if size and line_digest(_read_last_line(fd, size)) != self.head_digest:
                raise CheckpointError("the checkpoint log's tail changed under us")
            row: dict[str, Any] = {
                "heads": {sid: [count, tip] for sid, (count, tip) in sorted(heads.items())},
                "prev": self.head_digest,
                "seq": self.count + 1,
                "ts": ts if ts is not None else now_rfc3339_nanos(),
            }
            if retired:
                row["retired"] = dict(retired)
            row["sig"] = sign_hex(key, canonical_json(row))
            line = canonical_json(row)
            data = line + b"\n"
            try:
                write_all(fd, data)
                os.fsync(fd)
            except BaseException:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise
            if size == 0:
                # The log's name must be durable before its first checkpoint is published: a
                # witness ahead of the durable log reads as a cut. Not only when this call
                # created the file: an append that failed (ENOSPC, truncated back) or a process
                # killed after `open` leaves an empty file whose name was never fsync'd.
                fsync_dir(self.path.parent)
            self._consume_from(fd, size + len(data))
            return line
        finally:
            os.close(fd)

    def line_at(self, seq: int) -> bytes | None:
        """The stored line of checkpoint ``seq`` (1-based), re-read from the file."""
        if not 1 <= seq <= self.count:
            return None
        if seq == self.count:
            return self.last_line
        try:
            with self.path.open("rb") as handle:
                for n, line in enumerate(handle, start=1):
                    if n == seq:
                        return line.rstrip(b"\n")
        except FileNotFoundError:
            return None
        return None


def repair_checkpoint_tail(path: str | os.PathLike[str]) -> int:
    """Cut a torn (newline-less) last line of a checkpoint log; answers the bytes removed.

    A torn checkpoint was never fsynced whole, so never published: nothing anchored is lost.
    """
    log_path = Path(path)
    if not log_path.exists():
        return 0
    fd = _open_locked(log_path, os.O_RDWR, fcntl.LOCK_EX)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        last = _read_last_line(fd, size)
        if last.endswith(b"\n"):
            return 0
        os.ftruncate(fd, size - len(last))
        os.fsync(fd)
        return len(last)
    finally:
        os.close(fd)
