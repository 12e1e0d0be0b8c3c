"""Column planning, text type inference and row-level conversion errors, in process."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from lakehouse_common.contracts.catalog import DatasetManifest, SchemaField
from services.ingestd.convert import ErrorLog, convert_batch, failing_rows
from services.ingestd.schema import (
    Plan,
    SchemaRejected,
    TextTypeInference,
    UploadColumn,
    castable,
    plan_columns,
)


def manifest(fields: dict[str, str], version: int = 1) -> DatasetManifest:
    return DatasetManifest(
        name="ds",
        version=version,
        schema=[SchemaField(name=n, type=t) for n, t in fields.items()],
        files=[],
        row_count=0,
        created_at=datetime.now(UTC),
    )


def text_columns(*names: str) -> list[UploadColumn]:
    return [UploadColumn(name, pa.string(), pa.string()) for name in names]


def planned(plan: Plan) -> list[tuple[str, str, str | None, bool]]:
    return [(c.name, str(c.type), c.source, c.required) for c in plan.columns]


def problems(exc: pytest.ExceptionInfo[SchemaRejected]) -> list[tuple[str | None, str]]:
    return [(e.column, e.reason) for e in exc.value.errors]


class TestPlanColumns:
    def test_first_version_takes_natural_types_and_id_is_required(self) -> None:
        upload = [
            UploadColumn("id", pa.string(), pa.string()),
            UploadColumn("n", pa.string(), pa.int64()),
        ]
        plan = plan_columns(upload, None, "replace")
        assert planned(plan) == [("id", "string", "id", True), ("n", "int64", "n", False)]

    def test_replace_keeps_previous_types_adds_and_drops_optional_columns(self) -> None:
        previous = manifest({"id": "VARCHAR", "age": "BIGINT", "old": "VARCHAR"})
        upload = [
            UploadColumn("age", pa.string(), pa.string()),
            UploadColumn("id", pa.string(), pa.int64()),
            UploadColumn("new", pa.string(), pa.float64()),
        ]
        plan = plan_columns(upload, previous, "replace")
        assert planned(plan) == [
            ("age", "int64", "age", False),
            ("id", "string", "id", True),
            ("new", "double", "new", False),
        ]

    def test_append_keeps_previous_columns_and_fills_missing_with_nulls(self) -> None:
        previous = manifest({"id": "VARCHAR", "age": "BIGINT", "role": "VARCHAR"})
        plan = plan_columns(text_columns("role", "id"), previous, "append")
        assert planned(plan) == [
            ("id", "string", "id", True),
            ("age", "int64", None, False),
            ("role", "string", "role", False),
        ]

    def test_every_problem_is_listed(self) -> None:
        previous = manifest({"id": "VARCHAR", "age": "BIGINT", "tags": "VARCHAR[]"})
        upload = [
            UploadColumn("age", pa.struct([("y", pa.int64())]), None),
            UploadColumn("tags", pa.string(), pa.string()),
            UploadColumn("extra", pa.string(), pa.string()),
        ]
        with pytest.raises(SchemaRejected) as exc:
            plan_columns(upload, previous, "append", ["role"])
        assert problems(exc) == [
            ("age", "type STRUCT(y BIGINT) conflicts with BIGINT in version 1"),
            ("tags", "type VARCHAR conflicts with VARCHAR[] in version 1"),
            ("extra", "column is not in version 1; append cannot add columns (use mode=replace)"),
            ("id", "required column is missing; version 1 has it"),
            ("role", "required column is missing"),
        ]

    def test_unsupported_upload_type_is_a_problem(self) -> None:
        upload = [UploadColumn("d", pa.duration("s"), None, "unsupported type: duration")]
        with pytest.raises(SchemaRejected) as exc:
            plan_columns(upload, None, "replace")
        assert problems(exc) == [("d", "unsupported type: duration")]


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        (pa.string(), pa.int64(), True),
        (pa.string(), pa.time64("us"), True),
        (pa.int64(), pa.string(), True),
        (pa.int32(), pa.float64(), True),
        (pa.date32(), pa.timestamp("us"), True),
        (pa.null(), pa.struct([("a", pa.int64())]), True),
        (pa.list_(pa.int32()), pa.list_(pa.int64()), True),
        (pa.dictionary(pa.int32(), pa.string()), pa.string(), True),
        (pa.timestamp("us"), pa.int64(), False),
        (pa.bool_(), pa.int64(), False),
        (pa.int64(), pa.bool_(), False),
        (pa.string(), pa.list_(pa.string()), False),
        (pa.struct([("a", pa.int64())]), pa.struct([("b", pa.int64())]), False),
        (pa.timestamp("us"), pa.timestamp("us", tz="UTC"), False),
    ],
    ids=lambda v: str(v),
)
def test_castable(src: pa.DataType, dst: pa.DataType, ok: bool) -> None:
    assert castable(src, dst) is ok


def text_batch(**columns: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({k: pa.array(v, pa.string()) for k, v in columns.items()})


class TestTextTypeInference:
    def test_every_batch_counts_not_just_the_first(self) -> None:
        inference = TextTypeInference(["n", "when", "flag", "word"])
        inference.observe(
            text_batch(
                n=["1", "2"], when=["2024-01-01", None], flag=["true", "false"], word=["1", "x"]
            )
        )
        inference.observe(
            text_batch(
                n=["2.5", None],
                when=["2024-01-02 10:00:00", None],
                flag=["false", "maybe"],
                word=["2", "3"],
            )
        )
        assert inference.result() == {
            "n": pa.float64(),
            "when": pa.timestamp("us"),
            "flag": pa.string(),
            "word": pa.string(),
        }

    def test_numbers_stay_numbers_and_codes_stay_text(self) -> None:
        inference = TextTypeInference(["zip", "n", "empty", "neg"])
        inference.observe(
            text_batch(zip=["02134", "10001"], n=["0", "10"], empty=[None, None], neg=["-5", "0.5"])
        )
        assert inference.result() == {
            "zip": pa.string(),
            "n": pa.int64(),
            "empty": pa.string(),
            "neg": pa.float64(),
        }


class TestConvertBatch:
    def test_bad_values_are_located_by_row(self) -> None:
        values = pa.array([str(i) for i in range(1000)], pa.string())
        bad = values.to_pylist()
        for i in (3, 517, 998):
            bad[i] = f"x{i}"
        assert failing_rows(pa.array(bad), pa.int64(), 10) == [3, 517, 998]
        assert failing_rows(pa.array(bad), pa.int64(), 2) == [3, 517]

    def test_errors_are_numbered_from_the_batch_offset(self) -> None:
        previous = manifest({"id": "VARCHAR", "age": "BIGINT"})
        plan = plan_columns(text_columns("id", "age"), previous, "replace")
        errors = ErrorLog(10)
        batch = text_batch(id=["a", None, "c"], age=["1", "2", "three"])
        assert convert_batch(batch, plan, 100, errors) is None
        assert [(e.row, e.column, e.reason) for e in errors.errors] == [
            (102, "id", "required value is missing"),
            (103, "age", "cannot convert 'three' to BIGINT"),
        ]

    def test_text_converts_to_time_of_day(self) -> None:
        plan = plan_columns(text_columns("t"), manifest({"t": "TIME"}), "replace")
        out = convert_batch(text_batch(t=["12:30:00", None]), plan, 0, ErrorLog(10))
        assert out is not None
        assert str(out.column(0)[0]) == "12:30:00"

    def test_log_marks_truncation_when_it_drops_errors(self) -> None:
        plan = plan_columns(text_columns("n"), manifest({"n": "BIGINT"}), "replace")
        errors = ErrorLog(3)
        convert_batch(text_batch(n=["a", "b", "c", "d", "e"]), plan, 0, errors)
        assert [e.row for e in errors.errors] == [1, 2, 3]
        assert errors.truncated
