"""Drift between two audit baselines (SPEC §7): `lakehouse distill drift [A B]`.

Each metric of the two baselines gets a verdict:

- `ok`: unchanged, both zero, or changed by at most `distill.drift_threshold` (20 %) of A;
- `warn`: changed by more than that (`p2_evidence_rows` 12 → 82 is +583 %), or left zero
  (0 → anything: no percentage describes it), or present in only one baseline.

A and B name baselines of `audit_baselines.jsonl`: a position (0 the first, -1 the last) or a
run id (a unique prefix will do). By default the last two are compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lakehouse_common.distill.stage import DistillError

__all__ = ["DriftRow", "drift_table", "format_drift", "load_baselines", "select_baseline"]


def load_baselines(path: Path) -> list[dict[str, Any]]:
    """Every entry of the baselines log, oldest first; a malformed line is an error naming it."""
    if not path.is_file():
        raise DistillError(
            f"no baselines at {path}: run `lakehouse distill audit-full --append-baseline` first"
        )
    entries = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DistillError(f"{path}: line {number}: not JSON: {exc}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
            raise DistillError(f"{path}: line {number}: not a baseline (no `metrics` object)")
        entries.append(entry)
    return entries


def select_baseline(entries: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """The baseline at position `ref` (negative counts from the end) or with run id `ref`."""
    try:
        position = int(ref)
    except ValueError:
        found = [e for e in entries if str(e.get("run_id", "")).startswith(ref)]
        if len(found) != 1:
            what = "no baseline" if not found else f"{len(found)} baselines"
            raise DistillError(f"{what} with run id {ref!r}") from None
        return found[0]
    if not -len(entries) <= position < len(entries):
        raise DistillError(f"no baseline at position {position} ({len(entries)} recorded)")
    return entries[position]


@dataclass(frozen=True)
class DriftRow:
    metric: str
    before: float | None
    after: float | None
    change: float | None  # (after − before) / |before|; None when it has no meaning
    verdict: str  # ok | warn
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "verdict": self.verdict,
            "note": self.note,
        }


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def drift_table(
    before: Mapping[str, Any], after: Mapping[str, Any], threshold: float = 0.2
) -> list[DriftRow]:
    rows = []
    for metric in sorted(set(before) | set(after)):
        a, b = _number(before.get(metric)), _number(after.get(metric))
        if a is None or b is None:
            note = "only in B" if a is None and b is not None else "only in A"
            if a is None and b is None:
                note = "not a number"
            rows.append(DriftRow(metric, a, b, None, "warn", note))
        elif a == 0:
            if b == 0:
                rows.append(DriftRow(metric, a, b, 0.0, "ok"))
            else:
                rows.append(DriftRow(metric, a, b, None, "warn", "left zero"))
        else:
            change = (b - a) / abs(a)
            verdict = "warn" if abs(change) > threshold else "ok"
            rows.append(DriftRow(metric, a, b, change, verdict))
    return rows


def _show(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else f"{value:.0f}"


def format_drift(rows: list[DriftRow], a_label: str, b_label: str) -> str:
    """A plain-text table: metric, A, B, change, verdict."""
    header = ("metric", a_label, b_label, "change", "verdict")
    body = []
    for row in rows:
        if row.change is None:
            change = row.note
        else:
            change = f"{row.change * 100:+.0f}%"
        body.append((row.metric, _show(row.before), _show(row.after), change, row.verdict))
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip()
        for r in (header, *body)
    ]
    warned = sum(row.verdict == "warn" for row in rows)
    lines.append(f"{warned} of {len(rows)} metrics warn")
    return "\n".join(lines)
