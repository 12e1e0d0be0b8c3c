"""Verifying subject logs against signed checkpoints and the witness (SPEC §8, issue 18).

:func:`verify_subject` answers, for one subject, its chain's verification plus what the
checkpoints say: the log must hold at least the rows of the checkpoint anchoring the most of
them (the newest such), and its row at that count must carry the checkpointed tip. A log that is
shorter (cut at a line boundary, emptied, an older copy put back), missing, or different there
(rewritten) is not verified, and the answer names the checkpoint that contradicts it. Rows past
that count are reported as ``unanchored`` (the window before the next checkpoint), never hidden.
Rows signed by a retired key after its retirement (from the signed rotation checkpoints) fail
the chain itself.

:func:`check_witness` compares the checkpoint log with the witness's head: the checkpoint log
must hold the witnessed checkpoint, byte for byte; fewer checkpoints mean it was cut.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse_common.audit.chain import GENESIS, KeyMaterial, VerifyResult, verify_log
from lakehouse_common.audit.checkpoint import Anchor, CheckpointLog, line_digest
from lakehouse_common.audit.witness import Witness, WitnessError, WitnessHead

__all__ = [
    "AnchoredVerification",
    "WitnessCheck",
    "check_witness",
    "verify_subject",
]


@dataclass(frozen=True, slots=True)
class AnchoredVerification:
    """A subject log's chain verification and its standing against the checkpoints."""

    subject_id: str
    chain: VerifyResult
    # The checkpoint anchoring the most rows of this subject (None: no checkpoint names it).
    anchor: Anchor | None
    # Why the log contradicts ``anchor`` (None when it does not).
    contradiction: str | None
    exists: bool = True
    # Set when the checkpoint log itself does not verify (then no anchor is trusted).
    checkpoints_error: str | None = None

    @property
    def verified(self) -> bool:
        return self.chain.verified and self.contradiction is None

    @property
    def anchored(self) -> bool:
        """Every checkpointed row is there: the log holds the anchor's rows, unchanged."""
        return self.anchor is not None and self.contradiction is None and self.chain.verified

    @property
    def unanchored(self) -> int:
        """Rows past the newest checkpoint naming this subject (not yet anchored)."""
        return max(0, self.chain.count - (self.anchor.count if self.anchor else 0))

    @property
    def error(self) -> str | None:
        return self.chain.error or self.contradiction

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.chain.count,
            "tip": self.chain.tip,
            "verified": self.verified,
            "error": self.error,
            "epochs": self.chain.epochs,
            "anchored": self.anchored,
            "checkpoint": self.anchor.as_dict() if self.anchor else None,
            "unanchored": self.unanchored,
            "repairs": list(self.chain.repairs),
            "exists": self.exists,
        }


def _contradiction(anchor: Anchor, result: VerifyResult, exists: bool) -> str | None:
    named = (
        f"checkpoint {anchor.checkpoint} ({anchor.ts}) anchored {anchor.count} rows with tip "
        f"{anchor.tip[:16]}..."
    )
    if not exists:
        return f"the log is missing but {named} (log deleted)"
    if result.count < anchor.count:
        if not result.verified:
            return f"{named}; only {result.count} rows verify"
        what = "emptied" if result.count == 0 else "last rows cut, or an older copy put back"
        return f"the log holds {result.count} rows but {named} ({what})"
    tip = result.tips.get(anchor.count) if anchor.count else GENESIS
    if tip != anchor.tip:
        return (
            f"row {anchor.count} has hmac {str(tip)[:16]}... but {named} "
            "(log rewritten or replaced)"
        )
    return None


def verify_subject(
    path: str | os.PathLike[str],
    subject_id: str,
    keys: KeyMaterial,
    checkpoints: CheckpointLog | None,
) -> AnchoredVerification:
    """Verify one subject's log (a missing file is an empty log) against ``checkpoints``."""
    log_path = Path(path)
    anchor = checkpoints.by_subject.get(subject_id) if checkpoints is not None else None
    retired = checkpoints.retired if checkpoints is not None else None
    exists = log_path.exists()
    if exists:
        result = verify_log(
            log_path, keys, retired_at=retired, tips_at=[anchor.count] if anchor else ()
        )
    else:
        result = VerifyResult(count=0, tip=GENESIS, verified=True, error=None)
    contradiction = _contradiction(anchor, result, exists) if anchor is not None else None
    return AnchoredVerification(
        subject_id=subject_id,
        chain=result,
        anchor=anchor,
        contradiction=contradiction,
        exists=exists,
        checkpoints_error=checkpoints.error if checkpoints is not None else None,
    )


@dataclass(frozen=True, slots=True)
class WitnessCheck:
    """The checkpoint log against the witness's head."""

    witness: str
    head: int | None  # the witness's newest checkpoint seq (None: it holds none)
    checkpoints: int  # checkpoints in the log that verify
    error: str | None
    # Checkpoints newer than the witness's head (written, not yet published).
    unwitnessed: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "witness_head": self.head,
            "checkpoints": self.checkpoints,
            "unwitnessed": self.unwitnessed,
            "verified": self.verified,
            "error": self.error,
        }


def check_witness(checkpoints: CheckpointLog, witness: Witness | None) -> WitnessCheck:
    """The checkpoint log verifies and holds the witness's newest checkpoint, byte for byte."""
    name = witness.describe() if witness is not None else "(none given)"
    if checkpoints.error is not None:
        return WitnessCheck(name, None, checkpoints.count, checkpoints.error)
    if witness is None:
        return WitnessCheck(name, None, checkpoints.count, None, checkpoints.count)
    try:
        head: WitnessHead | None = witness.head()
    except WitnessError as exc:
        return WitnessCheck(name, None, checkpoints.count, exc.message)
    if head is None:
        if checkpoints.count:
            # Written but never published: the window is reported, not hidden.
            return WitnessCheck(name, None, checkpoints.count, None, checkpoints.count)
        return WitnessCheck(name, None, 0, None)
    if head.seq > checkpoints.count:
        return WitnessCheck(
            name,
            head.seq,
            checkpoints.count,
            f"the witness holds checkpoint {head.seq} but the checkpoint log has only "
            f"{checkpoints.count} (checkpoint log cut, or deleted)",
        )
    if line_digest(head.line) != checkpoints.digests[head.seq - 1]:
        return WitnessCheck(
            name,
            head.seq,
            checkpoints.count,
            f"checkpoint {head.seq} of the checkpoint log differs from the witness's copy "
            "(checkpoint log rewritten)",
        )
    return WitnessCheck(name, head.seq, checkpoints.count, None, checkpoints.count - head.seq)
