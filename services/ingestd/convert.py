"""Row-level conversion of one batch to the new version's columns (SPEC §4, ingestd: "rejects the
whole ingest with row numbers and reasons").

Each batch is cast column by column to the planned type. A cast that fails does not say which
value failed, so the failing column is bisected (casting halves until single values remain)
to name the offending rows — cheap, because it only happens on the error path and stops at the
error cap. Required columns are checked for nulls on the way.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_common.contracts.ingest import IngestErrorDetail, IngestErrorDetails
from services.ingestd.schema import Plan
from services.ingestd.typenames import type_name

_VALUE_PREVIEW = 60


class ErrorLog:
    """The first `limit` problems of an ingest, in the order the scan meets them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.errors: list[IngestErrorDetail] = []
        self.truncated = False

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.limit

    @property
    def room(self) -> int:
        return max(self.limit - len(self.errors), 0)

    def add(self, row: int | None, column: str | None, reason: str) -> None:
        if self.full:
            self.truncated = True
            return
        self.errors.append(IngestErrorDetail(row=row, column=column, reason=reason))

    def extend(self, errors: list[IngestErrorDetail]) -> None:
        for error in errors:
            self.add(error.row, error.column, error.reason)

    def details(self) -> dict[str, Any]:
        return IngestErrorDetails(errors=self.errors, truncated=self.truncated).model_dump()


def _strings_to_time(values: pa.Array, target: pa.DataType) -> pa.Array:
    # Arrow has no text → time cast; parse "HH:MM:SS[.ffffff]" as a time of day on 1970-01-01.
    stamped = pc.binary_join_element_wise("1970-01-01 ", values, "")
    return pc.cast(pc.cast(stamped, pa.timestamp("us")), target)


def cast_values(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast without loss (`safe`); raises `pa.ArrowInvalid` when some value does not convert."""
    if values.type == target:
        return values
    if pa.types.is_time(target) and (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return _strings_to_time(values, target)
    return pc.cast(values, target, safe=True)


def failing_rows(values: pa.Array, target: pa.DataType, limit: int) -> list[int]:
    """Indices (ascending, at most `limit`) of the values that do not cast to `target`."""
    found: list[int] = []

    def search(offset: int, length: int) -> None:
        if len(found) >= limit:
            return
        try:
            cast_values(values.slice(offset, length), target)
            return
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if length == 1:
            found.append(offset)
            return
        half = length // 2
        search(offset, half)
        search(offset + half, length - half)

    search(0, len(values))
    return found


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_PREVIEW else text[: _VALUE_PREVIEW - 1] + "…"


def convert_batch(
    batch: pa.RecordBatch, plan: Plan, first_row: int, errors: ErrorLog
) -> pa.RecordBatch | None:
    """`batch` (the upload's columns, native types) as the new version's columns, or None when
    some row is wrong — its problems go to `errors` with 1-based row numbers (`first_row` is the
    0-based index of the batch's first row in the file)."""
    # (row, column position, column, reason); one more than there is room for, so that the
    # log knows whether it had to drop some.
    found: list[tuple[int, int, str, str]] = []
    arrays: list[pa.Array] = []
    for position, column in enumerate(plan.columns):
        if column.source is None:
            arrays.append(pa.nulls(batch.num_rows, column.type))
            continue
        values = batch.column(column.source)
        if column.required and values.null_count:
            missing = pc.indices_nonzero(pc.is_null(values)).slice(0, errors.room + 1)
            for index in missing.to_pylist():
                found.append(
                    (first_row + index + 1, position, column.name, "required value is missing")
                )
        try:
            arrays.append(cast_values(values, column.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            target = type_name(column.type)
            for index in failing_rows(values, column.type, errors.room + 1):
                found.append(
                    (
                        first_row + index + 1,
                        position,
                        column.name,
                        f"cannot convert {_preview(values[index].as_py())} to {target}",
                    )
                )
    if not found:
        return pa.RecordBatch.from_arrays(arrays, schema=plan.schema)
    for row, _, name, reason in sorted(found):
        errors.add(row, name, reason)
    return None
