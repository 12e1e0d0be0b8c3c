"""Torn-tail repair of a subject audit log (SPEC §8 "Torn tail", issue 18).

A power loss mid-append, or ENOSPC where the rollback ``ftruncate`` also failed, can leave a
log whose last line has no newline. The chain never extends a torn tip, so every later append
for that subject would be refused. :func:`repair_torn_tail` cuts the torn bytes back to the last
complete row — which must verify under the key ring, else this is not a torn tail but a bad row,
and nothing is cut — and appends a ``"repair"`` row recording how many bytes were removed and
their SHA-256. Never silently: the repair row is part of the chain, ``verify`` lists it, and the
caller logs it. catalogd runs it on every log at start; ``lakehouse audit repair`` offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse_common.audit.chain import (
    REPAIR_ACTION,
    AuditChainError,
    KeyMaterial,
    _as_keyring,
    _open_locked,
    _read_last_line,
    _read_tip,
    append_rows,
    build_row,
)

__all__ = ["Repair", "is_torn", "repair_torn_tail"]


@dataclass(frozen=True, slots=True)
class Repair:
    """What :func:`repair_torn_tail` did."""

    subject_id: str
    bytes_removed: int
    sha256: str
    row: dict[str, Any]  # the stored repair row

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "bytes_removed": self.bytes_removed,
            "sha256": self.sha256,
            "seq": self.row["seq"],
        }


def is_torn(path: str | os.PathLike[str]) -> bool:
    """The file is non-empty and its last byte is not a newline (one ``pread``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    finally:
        os.close(fd)


def repair_torn_tail(
    path: str | os.PathLike[str],
    keys: KeyMaterial,
    subject_id: str,
    *,
    daemon: str = "catalogd",
) -> Repair | None:
    """Cut a torn last line and append a repair row; ``None`` when the tail is not torn.

    Raises :class:`~lakehouse_common.audit.chain.AuditChainError` (and cuts nothing) when the
    last complete row does not verify under ``keys``.
    """
    keyring = _as_keyring(keys)
    log_path = Path(path)
    if not log_path.exists():
        return None
    fd = _open_locked(log_path, os.O_RDWR, fcntl.LOCK_EX)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        torn = _read_last_line(fd, size)
        if torn.endswith(b"\n"):
            return None
        keep = size - len(torn)
        try:
            _read_tip(fd, keep, keyring)
        except AuditChainError as exc:
            raise AuditChainError(
                f"not repaired: the row before the torn tail does not verify ({exc.message})"
            ) from None
        digest = hashlib.sha256(torn).hexdigest()
        os.ftruncate(fd, keep)
        os.fsync(fd)
    finally:
        os.close(fd)
    row = build_row(
        subject_id,
        daemon=daemon,
        purpose=REPAIR_ACTION,
        action=REPAIR_ACTION,
        fields={"bytes_removed": len(torn), "reason": "torn tail", "sha256": digest},
    )
    stored = append_rows(log_path, keyring, [row], daemon=daemon, internal=True)
    return Repair(subject_id, len(torn), digest, stored[-1])
