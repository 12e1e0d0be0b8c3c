"""``lakehouse audit verify`` (SPEC §8): output shape and exit codes 0/1/2.

The main paths run the real command in a subprocess (``python -m lakehouse_common.cli`` and the
installed ``lakehouse`` console script); the remaining scenarios use typer's in-process runner,
which goes through the same click standalone mode and so the same exit codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import GENESIS, append_row, build_row
from lakehouse_common.cli import app

KEY = b"K" * 40


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_common.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str | Path) -> Outcome:
    """In-process run of the same typer app, for the secondary scenarios (fast)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return Outcome(result.exit_code, result.stdout, result.stderr)


def one_json_object(stdout: str) -> dict[str, object]:
    out = stdout.splitlines()
    assert len(out) == 1, stdout
    parsed = json.loads(out[0])
    assert isinstance(parsed, dict)
    # Compact, in the documented key order.
    assert out[0] == json.dumps(parsed, separators=(",", ":"))
    assert list(parsed) == ["count", "tip", "verified", "error"]
    return parsed


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    path.write_bytes(KEY)
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "WORKER-1.jsonl"
    for i in range(3):
        append_row(
            path,
            KEY,
            build_row(
                "WORKER-1",
                daemon="matrixd",
                purpose="search",
                action="read",
                fields=[f"f{i}", "é"],
                ts="2026-05-02T09:14:03.461439210Z",
            ),
        )
    return path


class TestVerifyCommand:
    def test_verified_log_exits_0(self, log: Path, key_file: Path) -> None:
        done = run_cli("audit", "verify", "--key-file", key_file, log)
        assert done.returncode == 0, done.stderr
        tip = json.loads(log.read_bytes().splitlines()[-1])["hmac"]
        assert one_json_object(done.stdout) == {
            "count": 3,
            "tip": tip,
            "verified": True,
            "error": None,
        }
        assert done.stdout == f'{{"count":3,"tip":"{tip}","verified":true,"error":null}}\n'

    def test_options_may_follow_the_log(self, log: Path, key_file: Path) -> None:
        done = invoke("audit", "verify", log, "--key-file", key_file)
        assert done.returncode == 0, done.stderr

    def test_empty_log_exits_0_with_genesis_tip(self, tmp_path: Path, key_file: Path) -> None:
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        done = invoke("audit", "verify", "--key-file", key_file, empty)
        assert done.returncode == 0
        assert one_json_object(done.stdout) == {
            "count": 0,
            "tip": GENESIS,
            "verified": True,
            "error": None,
        }

    def test_tampered_log_exits_1_naming_the_row(self, log: Path, key_file: Path) -> None:
        raw = log.read_bytes().splitlines(keepends=True)
        raw[1] = raw[1].replace(b'"f1"', b'"f7"')
        log.write_bytes(b"".join(raw))
        done = run_cli("audit", "verify", "--key-file", key_file, log)
        assert done.returncode == 1
        body = one_json_object(done.stdout)
        assert body["verified"] is False
        assert body["count"] == 1
        assert body["tip"] == json.loads(raw[0])["hmac"]
        assert isinstance(body["error"], str) and body["error"].startswith("line 2 (seq 2): ")

    def test_wrong_key_exits_1(self, log: Path, tmp_path: Path) -> None:
        other = tmp_path / "other.key"
        other.write_bytes(b"O" * 32)
        done = invoke("audit", "verify", "--key-file", other, log)
        assert done.returncode == 1
        assert one_json_object(done.stdout)["verified"] is False

    def test_torn_last_line_exits_1(self, log: Path, key_file: Path) -> None:
        log.write_bytes(log.read_bytes()[:-5])
        done = invoke("audit", "verify", "--key-file", key_file, log)
        assert done.returncode == 1
        error = one_json_object(done.stdout)["error"]
        assert isinstance(error, str) and error.startswith("line 3 ") and "newline" in error


class TestBadInput:
    def assert_bad_input(
        self, done: subprocess.CompletedProcess[str] | Outcome, reason: str
    ) -> None:
        assert done.returncode == 2
        body = one_json_object(done.stdout)
        assert body["verified"] is False and body["count"] == 0 and body["tip"] == GENESIS
        assert isinstance(body["error"], str) and reason in body["error"]
        assert reason in done.stderr

    def test_missing_log_exits_2(self, tmp_path: Path, key_file: Path) -> None:
        done = run_cli("audit", "verify", "--key-file", key_file, tmp_path / "nope.jsonl")
        self.assert_bad_input(done, "does not exist")

    def test_missing_key_file_exits_2(self, log: Path, tmp_path: Path) -> None:
        done = invoke("audit", "verify", "--key-file", tmp_path / "nope.key", log)
        self.assert_bad_input(done, "missing")

    def test_short_key_exits_2(self, log: Path, tmp_path: Path) -> None:
        short = tmp_path / "short.key"
        short.write_bytes(b"s" * 31)
        done = run_cli("audit", "verify", "--key-file", short, log)
        self.assert_bad_input(done, "too short")

    def test_log_that_is_a_directory_exits_2(self, tmp_path: Path, key_file: Path) -> None:
        done = invoke("audit", "verify", "--key-file", key_file, tmp_path)
        self.assert_bad_input(done, "unreadable")

    def test_missing_key_option_is_a_usage_error_exiting_2(self) -> None:
        done = run_cli("audit", "verify", "log.jsonl")
        assert done.returncode == 2
        assert done.stdout == ""
        assert "--key-file" in done.stderr

    @pytest.mark.parametrize(
        "args",
        [
            ("audit", "verify"),  # no log, no key
            ("audit", "verify", "--key-file", "k", "--nope", "log.jsonl"),
            ("audit", "frobnicate"),
            ("nope",),
        ],
    )
    def test_usage_errors_exit_2_with_nothing_on_stdout(self, args: tuple[str, ...]) -> None:
        done = invoke(*args)
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr


class TestEntryPoints:
    def test_help_lists_the_audit_commands(self) -> None:
        done = invoke("audit", "--help")
        assert done.returncode == 0
        assert "verify" in done.stdout

    def test_console_script_runs_the_same_app(self, log: Path, key_file: Path) -> None:
        script = Path(sys.executable).parent / "lakehouse"
        if not script.exists():
            pytest.skip("console script not installed (package not installed in this venv)")
        done = subprocess.run(
            [str(script), "audit", "verify", "--key-file", str(key_file), str(log)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert one_json_object(done.stdout)["count"] == 3
