"""The HMAC-chained audit log (SPEC §8): known answer, append, verify, tampering, concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lakehouse_common.audit import (
    FIRST_SEQ,
    GENESIS,
    AuditChainError,
    AuditKeyError,
    AuditLogNotFound,
    AuditRowError,
    RawNumber,
    canonical_bytes,
    canonical_bytes_from_raw,
    canonical_json,
    format_rfc3339_nanos,
    load_key,
    now_rfc3339_nanos,
    row_hmac,
    verify_log,
)
from lakehouse_common.audit import append_row as append
from lakehouse_common.audit import build_row as make_row
from lakehouse_common.errors import Conflict, InvalidInput, NotFound

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "audit_known_answer"
    / "01_trailing_zero_nanos.json"
)
KEY = b"k" * 32
NANOS_TS = "2026-05-02T09:14:03.461439210Z"


def row(n: int = 0, **over: Any) -> dict[str, Any]:
    base = make_row(
        "WORKER-1",
        daemon="matrixd",
        purpose="search",
        action="read",
        fields=["name", f"f{n}"],
        ts=NANOS_TS,
    )
    base.update(over)
    return base


def write_chain(path: Path, n: int, key: bytes = KEY) -> list[dict[str, Any]]:
    return [append(path, key, row(i)) for i in range(n)]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def sign_raw(key: bytes, rows: list[dict[str, Any]]) -> bytes:
    """Hand-chain rows exactly as given (no checks): for building logs append_row would refuse."""
    out = b""
    for r in rows:
        signed = dict(r)
        signed["hmac"] = row_hmac(key, canonical_bytes(signed))
        out += canonical_json(signed) + b"\n"
    return out


class TestKnownAnswer:
    fixture: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))

    # Hand-written from SPEC §8 (not produced by the code under test).
    HAND_WRITTEN = (
        '{"accessor":{"daemon":"matrixd","purpose":"staffing/search","trace_id":""},'
        '"action":"read","fields":["name","phone","rue_é"],'
        '"prev_hmac":"0000000000000000000000000000000000000000000000000000000000000000",'
        '"seq":1,"subject_id":"WORKER-1","ts":"2026-05-02T09:14:03.461439210Z"}'
    )

    def test_fixture_canonical_matches_hand_written_bytes(self) -> None:
        assert self.fixture["canonical"] == self.HAND_WRITTEN
        assert len(self.HAND_WRITTEN.encode()) == self.fixture["canonical_len"] == 275

    def test_canonical_bytes_of_the_row_match(self) -> None:
        assert canonical_bytes(self.fixture["row"]) == self.HAND_WRITTEN.encode()

    def test_canonical_bytes_from_the_stored_line_match(self) -> None:
        stored = self.fixture["stored_line"].encode()
        assert canonical_bytes_from_raw(stored) == self.HAND_WRITTEN.encode()

    def test_hmac_matches_stdlib_hmac_of_hand_written_bytes(self) -> None:
        key = bytes.fromhex(self.fixture["key_hex"])
        independent = hmac.new(key, self.HAND_WRITTEN.encode(), hashlib.sha256).hexdigest()
        assert independent == self.fixture["hmac"]
        assert row_hmac(key, self.HAND_WRITTEN.encode()) == self.fixture["hmac"]

    def test_stored_line_verifies_as_a_one_row_log(self, tmp_path: Path) -> None:
        log = tmp_path / "WORKER-1.jsonl"
        log.write_bytes(self.fixture["stored_line"].encode() + b"\n")
        result = verify_log(log, bytes.fromhex(self.fixture["key_hex"]))
        assert result.as_dict() == {
            "count": 1,
            "tip": self.fixture["hmac"],
            "verified": True,
            "error": None,
        }

    def test_row_hmac_is_rfc4231_hmac_sha256(self) -> None:
        # RFC 4231 test case 2.
        assert (
            row_hmac(b"Jefe", b"what do ya want for nothing?")
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )


class TestAppend:
    def test_first_row_links_to_genesis_with_seq_one(self, tmp_path: Path) -> None:
        stored = append(tmp_path / "log.jsonl", KEY, row())
        assert FIRST_SEQ == 1
        assert stored["seq"] == 1
        assert stored["prev_hmac"] == GENESIS == "0" * 64
        assert stored["hmac"] == row_hmac(KEY, canonical_bytes(stored))

    def test_rows_link_and_count_up(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        stored = write_chain(log, 4)
        assert [r["seq"] for r in stored] == [1, 2, 3, 4]
        for before, after in zip(stored, stored[1:], strict=False):
            assert after["prev_hmac"] == before["hmac"]
        assert verify_log(log, KEY).as_dict() == {
            "count": 4,
            "tip": stored[-1]["hmac"],
            "verified": True,
            "error": None,
        }

    def test_stored_line_is_canonical_json_of_the_full_row(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        stored = append(log, KEY, row())
        assert log.read_bytes() == canonical_json(stored) + b"\n"

    def test_caller_row_is_not_mutated(self, tmp_path: Path) -> None:
        mine = row()
        append(tmp_path / "log.jsonl", KEY, mine)
        assert "hmac" not in mine and "seq" not in mine

    def test_empty_trace_id_is_written_not_omitted(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        append(log, KEY, row())
        assert b'"trace_id":""' in log.read_bytes()

    def test_row_without_trace_id_is_refused(self, tmp_path: Path) -> None:
        bad = row(accessor={"daemon": "matrixd", "purpose": "search"})
        with pytest.raises(AuditRowError, match="trace_id"):
            append(tmp_path / "log.jsonl", KEY, bad)

    @pytest.mark.parametrize("field", ["seq", "prev_hmac", "hmac"])
    def test_row_carrying_chain_fields_is_refused(self, tmp_path: Path, field: str) -> None:
        with pytest.raises(AuditRowError, match=field):
            append(tmp_path / "log.jsonl", KEY, row(**{field: 1}))

    @pytest.mark.parametrize(
        "over",
        [
            {"ts": "2026-05-02 09:14:03"},
            {"ts": "2026-05-02T09:14:03.461439210+00:00"},
            {"subject_id": ""},
            {"action": 3},
            {"accessor": "matrixd"},
        ],
    )
    def test_malformed_rows_are_refused(self, tmp_path: Path, over: dict[str, Any]) -> None:
        with pytest.raises(AuditRowError):
            append(tmp_path / "log.jsonl", KEY, row(**over))
        assert not (tmp_path / "log.jsonl").exists()

    def test_torn_tip_refuses_append_and_leaves_file_alone(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        write_chain(log, 2)
        torn = log.read_bytes()[:-10]
        log.write_bytes(torn)
        with pytest.raises(AuditChainError, match="torn"):
            append(log, KEY, row())
        assert log.read_bytes() == torn

    def test_append_under_another_key_is_refused(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        write_chain(log, 1)
        with pytest.raises(AuditChainError, match="another key"):
            append(log, b"x" * 32, row())
        assert isinstance(AuditChainError("x"), Conflict)

    def test_short_key_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(AuditKeyError):
            append(tmp_path / "log.jsonl", b"k" * 31, row())

    def test_tip_is_read_from_a_long_last_line(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        append(log, KEY, row(fields=["x" * 20_000]))
        append(log, KEY, row(fields=["y" * 9_000]))
        third = append(log, KEY, row())
        assert third["seq"] == 3
        assert verify_log(log, KEY).verified


class TestTimestamps:
    def test_now_is_rfc3339_utc_with_nine_digits(self) -> None:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", now_rfc3339_nanos())

    def test_trailing_zero_nanos_are_kept(self) -> None:
        assert format_rfc3339_nanos(1_777_713_243_461_439_210) == NANOS_TS
        assert format_rfc3339_nanos(0) == "1970-01-01T00:00:00.000000000Z"

    def test_trailing_zero_timestamp_verifies_from_the_raw_line(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        append(log, KEY, row())
        assert NANOS_TS.encode() in log.read_bytes()
        assert verify_log(log, KEY).verified

    def test_reformatting_the_timestamp_breaks_the_chain(self, tmp_path: Path) -> None:
        # The original Go port's bug: RFC3339Nano printed ...46143921Z and the chain broke.
        log = tmp_path / "log.jsonl"
        append(log, KEY, row())
        log.write_bytes(log.read_bytes().replace(b".461439210Z", b".46143921Z"))
        result = verify_log(log, KEY)
        assert not result.verified
        assert result.error is not None and "line 1 (seq 1)" in result.error

    def test_number_literals_are_verified_as_stored(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        r = row()
        r["fields"] = {"score": 1}
        r["seq"], r["prev_hmac"] = 1, GENESIS
        # A row written by another runtime with the literal 1.10: sign its exact bytes.
        body = canonical_bytes(r).replace(b'"score":1', b'"score":1.10')
        line = body[:-1] + b',"hmac":"' + row_hmac(KEY, body).encode() + b'"}\n'
        log.write_bytes(line)
        assert verify_log(log, KEY).verified
        log.write_bytes(line.replace(b"1.10", b"1.1"))
        assert not verify_log(log, KEY).verified


class TestVerify:
    def test_empty_log_verifies_with_genesis_tip(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        log.write_bytes(b"")
        assert verify_log(log, KEY).as_dict() == {
            "count": 0,
            "tip": GENESIS,
            "verified": True,
            "error": None,
        }

    def test_missing_log_raises_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(AuditLogNotFound) as caught:
            verify_log(tmp_path / "nope.jsonl", KEY)
        assert isinstance(caught.value, NotFound)

    def test_wrong_key_fails_on_the_first_row(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        write_chain(log, 2)
        result = verify_log(log, b"z" * 32)
        assert not result.verified
        assert result.count == 0 and result.tip == GENESIS
        assert result.error is not None and result.error.startswith("line 1 (seq 1): hmac")


class TestTampering:
    """Each tamper makes verification fail and names the first bad row (line and seq)."""

    @pytest.fixture
    def log(self, tmp_path: Path) -> Path:
        path = tmp_path / "WORKER-1.jsonl"
        write_chain(path, 4)
        return path

    def assert_fails_at(self, log: Path, line: int, seq: int | str, why: str) -> None:
        result = verify_log(log, KEY)
        assert not result.verified
        assert result.line == line
        assert result.count == line - 1
        assert result.error is not None
        assert result.error.startswith(f"line {line} (seq {seq}): ")
        assert why in result.error
        good = lines(log)[: line - 1]
        expected_tip = json.loads(good[-1])["hmac"] if good else GENESIS
        assert result.tip == expected_tip

    def test_changed_field(self, log: Path) -> None:
        raw = lines(log)
        raw[1] = raw[1].replace(b'"f1"', b'"f9"')
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 2, 2, "hmac mismatch")

    def test_changed_trace_id(self, log: Path) -> None:
        raw = lines(log)
        raw[2] = raw[2].replace(b'"trace_id":""', b'"trace_id":"18abbabdc2306a83-c2306aa9"')
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 3, 3, "hmac mismatch")

    def test_deleted_row(self, log: Path) -> None:
        raw = lines(log)
        del raw[1]
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 2, 3, "prev_hmac")

    def test_deleted_first_row(self, log: Path) -> None:
        log.write_bytes(b"".join(lines(log)[1:]))
        self.assert_fails_at(log, 1, 2, "prev_hmac")

    def test_reordered_rows(self, log: Path) -> None:
        raw = lines(log)
        raw[1], raw[2] = raw[2], raw[1]
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 2, 3, "prev_hmac")

    def test_changed_prev_hmac(self, log: Path) -> None:
        raw = lines(log)
        stored = json.loads(raw[2])
        raw[2] = raw[2].replace(stored["prev_hmac"].encode(), b"f" * 64)
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 3, 3, "hmac mismatch")

    def test_truncated_last_line(self, log: Path) -> None:
        log.write_bytes(log.read_bytes()[:-20])
        self.assert_fails_at(log, 4, "?", "no trailing newline")

    def test_missing_final_newline_only(self, log: Path) -> None:
        log.write_bytes(log.read_bytes()[:-1])
        self.assert_fails_at(log, 4, "?", "torn")

    def test_appended_garbage(self, log: Path) -> None:
        log.write_bytes(log.read_bytes() + b"not json\n")
        self.assert_fails_at(log, 5, "?", "not a valid row")

    def test_blank_line(self, log: Path) -> None:
        raw = lines(log)
        raw.insert(2, b"\n")
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 3, "?", "blank line")

    def test_duplicate_key_smuggled_into_a_row(self, log: Path) -> None:
        raw = lines(log)
        raw[0] = raw[0].replace(b'"action":"read"', b'"action":"read","action":"erase"')
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 1, "?", "duplicate key")

    def test_lone_surrogate_escape_is_a_bad_row_not_a_crash(self, log: Path) -> None:
        raw = lines(log)
        raw[1] = raw[1].replace(b'"f1"', b'"\\ud800"')
        log.write_bytes(b"".join(raw))
        self.assert_fails_at(log, 2, "?", "lone surrogate")

    def test_huge_seq_literal_is_a_bad_row_not_a_crash(self, tmp_path: Path) -> None:
        log = tmp_path / "huge.jsonl"
        log.write_bytes(sign_raw(KEY, [row(0, seq=RawNumber("1" + "0" * 5000), prev_hmac=GENESIS)]))
        self.assert_fails_at(log, 1, "1" + "0" * 5000, "out of order, expected 1")

    def test_validly_signed_seq_gap(self, tmp_path: Path) -> None:
        # Signed correctly and linked, but seq jumps: only the seq check catches it.
        first = row(0, seq=1, prev_hmac=GENESIS)
        chain = sign_raw(KEY, [first])
        tip = json.loads(chain)["hmac"]
        chain += sign_raw(KEY, [row(1, seq=3, prev_hmac=tip)])
        log = tmp_path / "gap.jsonl"
        log.write_bytes(chain)
        self.assert_fails_at(log, 2, 3, "seq 3 out of order, expected 2")

    def test_validly_signed_zero_based_seq(self, tmp_path: Path) -> None:
        log = tmp_path / "zero.jsonl"
        log.write_bytes(sign_raw(KEY, [row(0, seq=0, prev_hmac=GENESIS)]))
        self.assert_fails_at(log, 1, 0, "expected 1")

    def test_validly_signed_non_integer_seq(self, tmp_path: Path) -> None:
        log = tmp_path / "float.jsonl"
        log.write_bytes(sign_raw(KEY, [row(0, seq=1.0, prev_hmac=GENESIS)]))
        self.assert_fails_at(log, 1, "1.0", "not an integer")


class TestLoadKey:
    def test_raw_bytes_are_the_key_newline_included(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_bytes(b"s" * 32 + b"\n")
        assert load_key(path) == b"s" * 32 + b"\n"

    def test_exactly_32_bytes_is_enough(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_bytes(bytes(range(32)))
        assert load_key(path) == bytes(range(32))

    def test_missing_key_file(self, tmp_path: Path) -> None:
        with pytest.raises(AuditKeyError, match="missing") as caught:
            load_key(tmp_path / "nope")
        assert isinstance(caught.value, InvalidInput)

    def test_short_key_file(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_bytes(b"s" * 31)
        with pytest.raises(AuditKeyError, match="too short: 31 bytes"):
            load_key(path)

    def test_directory_is_not_a_key(self, tmp_path: Path) -> None:
        with pytest.raises(AuditKeyError, match="directory"):
            load_key(tmp_path)


def _append_many(path: str, count: int, tag: str) -> None:
    for i in range(count):
        append(path, KEY, row(fields=[tag, str(i)]))


class TestConcurrency:
    def test_threads_never_fork_the_chain(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        threads = [
            threading.Thread(target=_append_many, args=(str(log), 25, f"t{n}")) for n in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result = verify_log(log, KEY)
        assert result.as_dict()["verified"] is True, result.error
        assert result.count == 200
        assert len(lines(log)) == 200

    def test_processes_never_fork_the_chain(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_append_many, args=(str(log), 25, f"p{n}")) for n in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        result = verify_log(log, KEY)
        assert result.verified, result.error
        assert result.count == 100
        seqs = [json.loads(line)["seq"] for line in lines(log)]
        assert seqs == list(range(1, 101))

    def test_verify_beside_an_appender_never_sees_half_a_row(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        log.write_bytes(b"")
        writer = threading.Thread(target=_append_many, args=(str(log), 60, "w"))
        writer.start()
        counts = []
        while writer.is_alive():
            result = verify_log(log, KEY)
            assert result.verified, result.error
            counts.append(result.count)
        writer.join()
        assert counts == sorted(counts)
        assert verify_log(log, KEY).count == 60


class AuditChainMachine(RuleBasedStateMachine):
    """Whatever rows are appended, in whatever order, the chain verifies."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="audit-sm-"))
        self.log = self.dir / "subject.jsonl"
        self.key = b"\x00\xff" * 16 + b"tail"
        self.rows: list[dict[str, Any]] = []

    @rule(
        subject=st.text(min_size=1, max_size=20),
        purpose=st.text(max_size=20),
        trace_id=st.sampled_from(["", "18abbabdc2306a83-c2306aa9"]) | st.text(max_size=10),
        fields=st.lists(st.text(max_size=15), max_size=4),
        nanos=st.integers(min_value=0, max_value=2**62),
    )
    def append_text_row(
        self, subject: str, purpose: str, trace_id: str, fields: list[str], nanos: int
    ) -> None:
        new = make_row(
            subject,
            daemon="matrixd",
            purpose=purpose,
            action="read",
            fields=fields,
            trace_id=trace_id,
            ts=format_rfc3339_nanos(nanos - nanos % 10),  # trailing zero on purpose
        )
        self.rows.append(append(self.log, self.key, new))

    @rule(
        fields=st.dictionaries(
            st.text(max_size=8),
            st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
            max_size=4,
        )
    )
    def append_numeric_row(self, fields: dict[str, Any]) -> None:
        new = make_row("WORKER-2", daemon="queryd", purpose="sql", action="query", fields=fields)
        self.rows.append(append(self.log, self.key, new))

    @invariant()
    def chain_verifies(self) -> None:
        if not self.log.exists():
            assert not self.rows
            return
        result = verify_log(self.log, self.key)
        assert result.verified, result.error
        assert result.count == len(self.rows)
        assert result.tip == (self.rows[-1]["hmac"] if self.rows else GENESIS)

    @invariant()
    def stored_lines_are_the_signed_bytes(self) -> None:
        if not self.rows:
            return
        last = lines(self.log)[-1]
        assert canonical_bytes_from_raw(last) == canonical_bytes(self.rows[-1])

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


AuditChainMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=8, deadline=None
)
TestAuditChainMachine = AuditChainMachine.TestCase
