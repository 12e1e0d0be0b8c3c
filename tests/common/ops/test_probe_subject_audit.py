"""`lakehouse probe subject-audit` (scripts/parity/subject_audit_parity.sh): the live phase
against a fake gateway (a real HTTP server on loopback) over real subject logs, the options and
the exit codes. The known-answer phase alone is covered by test_audit_known_answers.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import append_row, build_row, load_keyring, verify_log
from lakehouse_common.cli import app
from lakehouse_common.config import LakehouseSettings, audit_key_path
from tests.support.stack import stack_config

KNOWN_ANSWER_CHECKS = 12
SUBJECTS = ("W-1", "W-2")


class FakeGateway:
    """Answers `GET /v1/catalog/subjects/{id}/audit/verify` from the log files, as catalogd
    would; `lie` changes the tip it reports. Records the Authorization headers it saw."""

    def __init__(self, settings: LakehouseSettings, *, lie: bool = False) -> None:
        self.settings = settings
        self.lie = lie
        self.authorizations: list[str | None] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                gateway.authorizations.append(self.headers.get("Authorization"))
                subject = self.path.split("/")[4]
                body = json.dumps(gateway.answer(subject)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, subject: str) -> dict[str, Any]:
        log = self.settings.data_dir / "subjects" / "audit" / f"{subject}.jsonl"
        keyring = load_keyring(audit_key_path(self.settings), private=False)
        answer = verify_log(log, keyring).as_dict()
        if self.lie:
            answer["tip"] = "0" * 64
        return {"subject_id": subject, **answer}

    def __enter__(self) -> FakeGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def stack(tmp_path: Path) -> tuple[Path, LakehouseSettings]:
    """A config whose data dir holds a key and two subjects' audit logs."""
    config_path, settings = stack_config(tmp_path)  # writes the audit key too
    key = load_keyring(audit_key_path(settings)).current
    directory = settings.data_dir / "subjects" / "audit"
    directory.mkdir(parents=True)
    for subject in SUBJECTS:
        for field in ("name", "phone"):
            row = build_row(subject, daemon="matrixd", purpose="p", action="read", fields=[field])
            append_row(directory / f"{subject}.jsonl", key, row)
    return config_path, settings


@pytest.fixture
def gateway(stack: tuple[Path, LakehouseSettings]) -> Iterator[FakeGateway]:
    with FakeGateway(stack[1]) as fake:
        yield fake


def probe(*args: str) -> Any:
    return CliRunner().invoke(app, ["probe", "subject-audit", *args])


def last_line(output: str) -> str:
    return output.rstrip().splitlines()[-1]


class TestLivePhase:
    def test_every_log_verified_by_catalogd_and_offline(
        self, stack: tuple[Path, LakehouseSettings], gateway: FakeGateway
    ) -> None:
        result = probe("--config", str(stack[0]), "--gateway", gateway.url)
        assert result.exit_code == 0, result.output
        assert "FAIL" not in result.output
        assert "  PASS  W-1: catalogd and offline agree, verified (2 rows)" in result.output
        total = KNOWN_ANSWER_CHECKS + len(SUBJECTS)
        assert last_line(result.output) == (
            f"subject_audit_parity: {total}/{total} assertions passed"
        )

    def test_limit_verifies_only_the_first_logs(
        self, stack: tuple[Path, LakehouseSettings], gateway: FakeGateway
    ) -> None:
        result = probe("--config", str(stack[0]), "--gateway", gateway.url, "--limit", "1")
        assert result.exit_code == 0, result.output
        assert "W-2" not in result.output
        total = KNOWN_ANSWER_CHECKS + 1
        assert last_line(result.output) == (
            f"subject_audit_parity: {total}/{total} assertions passed"
        )

    def test_catalogd_disagreeing_with_the_offline_answer_fails(
        self, stack: tuple[Path, LakehouseSettings]
    ) -> None:
        with FakeGateway(stack[1], lie=True) as liar:
            result = probe("--config", str(stack[0]), "--gateway", liar.url)
        assert result.exit_code == 1
        assert "  FAIL  W-1: catalogd and offline agree" in result.output
        total = KNOWN_ANSWER_CHECKS + len(SUBJECTS)
        assert last_line(result.output) == (
            f"subject_audit_parity: {KNOWN_ANSWER_CHECKS}/{total} assertions passed"
        )

    def test_other_runtime_compared_and_never_sent_the_token(
        self, stack: tuple[Path, LakehouseSettings], gateway: FakeGateway
    ) -> None:
        with FakeGateway(stack[1], lie=True) as other:
            result = probe(
                "--config", str(stack[0]), "--gateway", gateway.url, "--other", other.url,
                "--token", "s3cret",
            )  # fmt: skip
        assert result.exit_code == 1
        assert "  FAIL  W-1: other runtime answers the same" in result.output
        assert gateway.authorizations == ["Bearer s3cret"] * len(SUBJECTS)
        assert other.authorizations == [None] * len(SUBJECTS)

    def test_unreachable_catalogd_is_a_failed_check(
        self, stack: tuple[Path, LakehouseSettings]
    ) -> None:
        with FakeGateway(stack[1]) as gone:
            url = gone.url
        result = probe("--config", str(stack[0]), "--gateway", url)
        assert result.exit_code == 1
        assert "  FAIL  W-1: catalogd answers verify" in result.output


class TestOptions:
    def test_skip_live_never_reads_the_config(self, tmp_path: Path) -> None:
        result = probe("--skip-live", "--config", str(tmp_path / "missing.toml"))
        assert result.exit_code == 0, result.output
        assert "phase 2: skipped (--skip-live)" in result.output

    def test_unusable_config_exits_1_naming_it(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.toml"
        bad.write_text("[ports]\nstoraged = -1\n")
        result = probe("--config", str(bad))
        assert result.exit_code == 1
        assert "subject_audit_parity: " in result.output
        assert "storaged" in result.output

    def test_negative_limit_is_bad_usage(self) -> None:
        assert probe("--skip-live", "--limit", "-1").exit_code == 2
