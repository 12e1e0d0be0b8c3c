"""The session log (SPEC §3, §6): record shape, session ids, locked never-torn appends shared by
several processes, and reading the newest records from the tail."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import orjson
import pytest

from lakehouse_common.config import LakehouseSettings, ServerSettings
from lakehouse_common.session_log import (
    SCHEMA,
    InfraError,
    SessionRecord,
    append_session,
    new_session_id,
    read_recent_sessions,
    session_log_path,
)
from lakehouse_common.validation_error import ValidationError

RFC3339_NANOS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
MINTED = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")


def record(n: int = 0, **extra: object) -> SessionRecord:
    fields: dict[str, object] = {
        "session_id": f"s-{n}",
        "trace_id": f"t-{n}",
        "daemon": "validatord",
        "kind": "email",
        "model": "ollama/qwen2.5",
        "status": "max_iter_exhausted",
        "iterations": 3,
        "errors": [ValidationError.completeness("body is empty")],
    }
    fields.update(extra)
    return SessionRecord.model_validate(fields)


class TestRecord:
    def test_line_has_the_spec_keys_in_order(self) -> None:
        line = record().line()
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        decoded = orjson.loads(line)
        assert list(decoded) == [
            "schema",
            "session_id",
            "trace_id",
            "daemon",
            "timestamp",
            "kind",
            "model",
            "status",
            "iterations",
            "errors",
            "infra_error",
        ]
        assert decoded["schema"] == SCHEMA
        assert RFC3339_NANOS.fullmatch(decoded["timestamp"])
        assert decoded["errors"] == [{"Completeness": {"reason": "body is empty"}}]
        assert decoded["infra_error"] is None

    def test_non_ascii_is_written_raw(self) -> None:
        line = record(errors=[ValidationError.schema("名前", "Zoë 🙂")]).line()
        assert "名前".encode() in line and "🙂".encode() in line

    def test_infra_error_round_trips(self) -> None:
        infra = InfraError(daemon="chatd", status=None, code="upstream_unavailable", message="x")
        again = SessionRecord.model_validate_json(record(infra_error=infra).line())
        assert again.infra_error == infra

    def test_legacy_error_rows_still_load(self) -> None:
        raw = orjson.loads(record().line())
        raw["errors"] = [{"Kind": "schema", "Field": "to", "Reason": "required"}]
        again = SessionRecord.model_validate(raw)
        assert again.errors == [ValidationError.schema("to", "required")]

    def test_session_id_is_never_empty(self) -> None:
        assert new_session_id("18abbabdc2306a83-c2306aa9") == "18abbabdc2306a83-c2306aa9"
        assert MINTED.fullmatch(new_session_id(""))
        assert MINTED.fullmatch(new_session_id(None))
        with pytest.raises(ValueError):
            record(session_id="")

    def test_path_is_under_the_data_dir(self, tmp_path: Path) -> None:
        settings = LakehouseSettings(server=ServerSettings(data_dir=tmp_path))
        assert session_log_path(settings) == tmp_path / "sessions" / "sessions.jsonl"


def _append_many(path: str, writer: int, count: int) -> None:
    for i in range(count):
        # Long lines make interleaving visible if a write were ever split.
        append_session(Path(path), record(writer * 1000 + i, model="m" * 5000))


class TestAppend:
    def test_creates_the_directory_and_appends_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "sessions" / "sessions.jsonl"
        append_session(path, record(1))
        append_session(path, record(2))
        lines = path.read_bytes().splitlines()
        assert [orjson.loads(line)["session_id"] for line in lines] == ["s-1", "s-2"]

    def test_concurrent_writers_in_several_processes_never_tear_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "sessions.jsonl"
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_append_many, args=(str(path), w, 40)) for w in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b""
        ids = {SessionRecord.model_validate_json(line).session_id for line in lines[:-1]}
        assert len(lines) - 1 == 160 and len(ids) == 160

    def test_a_fragment_left_by_a_crashed_writer_does_not_swallow_the_next_record(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "sessions.jsonl"
        append_session(path, record(1))
        with path.open("ab") as fh:
            fh.write(b'{"schema":"validator_session.v1","session_id":"torn')
        append_session(path, record(2))
        recent = read_recent_sessions(path, 10)
        assert [r.session_id for r in recent.records] == ["s-2", "s-1"]
        assert recent.skipped == 1


class TestReadRecent:
    def test_missing_file_is_an_empty_log(self, tmp_path: Path) -> None:
        recent = read_recent_sessions(tmp_path / "nope.jsonl", 10)
        assert recent.records == [] and recent.skipped == 0

    def test_newest_first_and_bounded_by_limit(self, tmp_path: Path) -> None:
        path = tmp_path / "sessions.jsonl"
        for n in range(5):
            append_session(path, record(n))
        recent = read_recent_sessions(path, 3)
        assert [r.session_id for r in recent.records] == ["s-4", "s-3", "s-2"]

    def test_reads_across_block_boundaries(self, tmp_path: Path) -> None:
        path = tmp_path / "sessions.jsonl"
        # ~300 KiB: the tail reader has to step back over several 64 KiB blocks.
        with path.open("wb") as fh:
            for n in range(300):
                fh.write(record(n, model="x" * 1000).line())
        recent = read_recent_sessions(path, 120)
        assert [r.session_id for r in recent.records] == [f"s-{n}" for n in range(299, 179, -1)]
        everything = read_recent_sessions(path, 1000)
        assert len(everything.records) == 300 and everything.skipped == 0

    def test_lines_of_other_shapes_are_skipped_and_counted(self, tmp_path: Path) -> None:
        path = tmp_path / "sessions.jsonl"
        append_session(path, record(1))
        with path.open("ab") as fh:
            fh.write(b'{"something":"else"}\nnot json\n')
        append_session(path, record(2, extra_key="kept"))
        recent = read_recent_sessions(path, 10)
        assert [r.session_id for r in recent.records] == ["s-2", "s-1"]
        assert recent.skipped == 2
        assert recent.records[0].model_dump(by_alias=True)["extra_key"] == "kept"

    def test_unparseable_lines_do_not_shorten_the_answer(self, tmp_path: Path) -> None:
        path = tmp_path / "sessions.jsonl"
        for n in range(3):
            append_session(path, record(n))
        with path.open("ab") as fh:
            fh.write((b'{"junk": "' + b"x" * 1000 + b'"}\n') * 200)
        recent = read_recent_sessions(path, 3)
        assert [r.session_id for r in recent.records] == ["s-2", "s-1", "s-0"]
        assert recent.skipped == 200
