"""Stage 1, materialize: `_kb/*.jsonl` → `evidence/YYYY-MM-DD/<stream>.jsonl` (SPEC §7).

Every stream file is read line by line (memory stays flat whatever the size of `_kb`); each
line that is a well-formed observation becomes one evidence record (:mod:`.records`) through
its stream's transform (:mod:`.transforms`) and lands in the partition of the day of its
`recorded_at`, in source order. Lines that cannot be used are skipped, counted by reason and
listed (up to `distill.max_listed_skips`) with their source, line and byte offset:

- `blank_line`, `incomplete_line` (no final newline: a write in progress or a torn tail),
  `invalid_json`, `not_an_object`;
- `bad_envelope`: not `{schema: "observation.v1", recorded_at, trace_id, daemon, event: {…}}`;
- `bad_event`: the event lacks a field its transform needs.

The whole evidence tree is recomputed on every run and written through an :class:`OutputTree`,
so a re-run over the same `_kb` writes nothing and leaves every file byte-identical.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any, Final

import orjson

from lakehouse_common.config import DistillSettings
from lakehouse_common.contracts.observe import SCHEMA as OBSERVATION_SCHEMA
from lakehouse_common.distill.jsonl import OutputTree, ProgressHook, read_lines
from lakehouse_common.distill.layout import DistillLayout
from lakehouse_common.distill.records import evidence_record, sig_hash
from lakehouse_common.distill.stage import (
    RECEIPT_SCHEMA_VERSION,
    StageResult,
    save_receipt,
)
from lakehouse_common.distill.transforms import BadEvent, transform

__all__ = ["SKIP_REASONS", "materialize"]

SKIP_REASONS: Final = (
    "blank_line",
    "incomplete_line",
    "invalid_json",
    "not_an_object",
    "bad_envelope",
    "bad_event",
)
_RFC3339_DAY: Final = re.compile(r"(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}:\d{2}")
_PROGRESS_EVERY: Final = 1 << 20


class _Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _envelope(raw: bytes) -> tuple[dict[str, Any], str, str, str, dict[str, Any]]:
    try:
        obs = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Skip("invalid_json", str(exc)) from None
    if not isinstance(obs, dict):
        raise _Skip("not_an_object")
    if obs.get("schema") != OBSERVATION_SCHEMA:
        raise _Skip("bad_envelope", f"schema is not {OBSERVATION_SCHEMA!r}")
    recorded_at = obs.get("recorded_at")
    day = _RFC3339_DAY.match(recorded_at) if isinstance(recorded_at, str) else None
    if day is None:
        raise _Skip("bad_envelope", "recorded_at: expected an RFC 3339 timestamp")
    trace_id, daemon, event = obs.get("trace_id", ""), obs.get("daemon", ""), obs.get("event")
    if not isinstance(trace_id, str) or not isinstance(daemon, str):
        raise _Skip("bad_envelope", "trace_id and daemon must be strings")
    if not isinstance(event, dict):
        raise _Skip("bad_envelope", "event: expected an object")
    return obs, day.group(1), trace_id, daemon, event


def materialize(
    layout: DistillLayout, settings: DistillSettings, *, progress: ProgressHook | None = None
) -> StageResult:
    tree = OutputTree(layout.evidence, layout.data_dir)
    skips: Counter[str] = Counter()
    listed: list[dict[str, Any]] = []
    unlisted = 0
    by_kind: Counter[str] = Counter()
    inputs: list[dict[str, Any]] = []
    records_in = records_out = 0
    pending_progress = 0
    try:
        for path in layout.sources():
            stream, source = path.stem, layout.relative(path)
            digest = hashlib.sha256()
            lines = size = 0
            for number, offset, raw, complete in read_lines(path):
                length = len(raw) + complete
                digest.update(raw + b"\n" if complete else raw)
                size += length
                lines += 1
                records_in += 1
                pending_progress += length
                if progress is not None and pending_progress >= _PROGRESS_EVERY:
                    progress(pending_progress)
                    pending_progress = 0
                try:
                    if not complete:
                        raise _Skip("incomplete_line", "no final newline")
                    if not raw.strip():
                        raise _Skip("blank_line")
                    obs, day, trace_id, daemon, event = _envelope(raw)
                    try:
                        parts = transform(stream, event, trace_id)
                    except BadEvent as exc:
                        raise _Skip("bad_event", str(exc)) from None
                except _Skip as skip:
                    skips[skip.reason] += 1
                    if len(listed) < settings.max_listed_skips:
                        listed.append(
                            {
                                "source": source,
                                "line_offset": number,
                                "byte_offset": offset,
                                "reason": skip.reason,
                                "detail": skip.detail,
                            }
                        )
                    else:
                        unlisted += 1
                    continue
                record = evidence_record(
                    kind=parts.kind,
                    task_type=parts.task_type,
                    task=parts.task,
                    trace_id=trace_id,
                    daemon=daemon,
                    input=parts.input,
                    output=parts.output,
                    outcome=parts.outcome,
                    tokens=parts.tokens,
                    metadata=parts.metadata,
                    source=source,
                    line_offset=number,
                    recorded_at=obs["recorded_at"],
                    sig=sig_hash(obs),
                )
                tree.write(f"{day}/{stream}.jsonl", orjson.dumps(record))
                by_kind[parts.kind] += 1
                records_out += 1
            inputs.append(
                {"path": source, "lines": lines, "bytes": size, "sha256": digest.hexdigest()}
            )
        if progress is not None and pending_progress:
            progress(pending_progress)
        committed = tree.commit()
    except BaseException:
        tree.discard()
        raise
    receipt = {
        "stage": "materialize",
        "schema_version": RECEIPT_SCHEMA_VERSION,
        "inputs": inputs,
        "records_in": records_in,
        "records_out": records_out,
        "skips": dict(sorted(skips.items())),
        "skipped": listed,
        "skipped_unlisted": unlisted,
        "by_kind": dict(sorted(by_kind.items())),
        "outputs": [f.as_dict() for f in committed.files],
    }
    result = StageResult("materialize", receipt, committed.written, committed.removed)
    return save_receipt(layout, result)


def total_input_bytes(layout: DistillLayout) -> int:
    return sum(path.stat().st_size for path in layout.sources())
