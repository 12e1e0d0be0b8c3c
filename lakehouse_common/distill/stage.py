"""What every stage answers, and how receipts are written (SPEC §7).

A receipt is a pure function of the stage's input — counts, file digests, the settings that
shaped the output — with no clock and no "files written this time": a re-run over the same
input produces the same receipt, byte for byte, and so the same `run_hash`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from lakehouse_common.distill.jsonl import write_if_changed
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.records import canonical

__all__ = [
    "RECEIPT_SCHEMA_VERSION",
    "DistillError",
    "StageResult",
    "dump_json",
    "run_hash",
    "save_receipt",
]

RECEIPT_SCHEMA_VERSION: Final = 1


class DistillError(Exception):
    """A stage cannot run (missing or stale input, an unreadable held-out set or roster)."""


@dataclass
class StageResult:
    stage: str
    receipt: dict[str, Any]
    # Files (relative to the data dir) this run changed or removed; empty on an idempotent re-run.
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def dump_json(value: Any) -> bytes:
    """Receipts, summaries and reports: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def save_receipt(layout: DistillLayout, result: StageResult) -> StageResult:
    path = layout.receipt(result.stage)
    if write_if_changed(path, dump_json(result.receipt)):
        result.written.append(layout.relative(path))
    return result


def run_hash(receipts: list[dict[str, Any]]) -> str:
    """sha256 over the canonical JSON (SPEC §8) of the receipts, in stage order."""
    return hashlib.sha256(canonical(receipts)).hexdigest()
