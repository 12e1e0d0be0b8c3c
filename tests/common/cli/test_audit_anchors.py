"""``lakehouse audit verify-all`` against checkpoints and the witness, ``repair`` and eager
``rotate`` (issue 18), in-process through typer's runner; exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import REPAIR_ACTION, ROTATION_ACTION, append_row, build_row
from lakehouse_common.audit.keys import load_keyring
from lakehouse_common.cli import app
from lakehouse_common.config import audit_key_path, load_settings, signing_key_path
from lakehouse_common.ops.stack import ephemeral_config


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def row(sid: str, n: int) -> dict[str, Any]:
    return build_row(sid, daemon="queryd", purpose="query", action="read", fields=[f"f{n}"])


class Data:
    def __init__(self, root: Path) -> None:
        self.config, self.settings = ephemeral_config(root)
        self.logs = self.settings.data_dir / "subjects" / "audit"
        self.logs.mkdir(parents=True)

    def append(self, sid: str, n: int = 1) -> None:
        keyring = load_keyring(audit_key_path(self.settings))
        for i in range(n):
            append_row(self.logs / f"{sid}.jsonl", keyring, row(sid, i))

    def verify_all(self) -> tuple[int, dict[str, Any]]:
        result = invoke("audit", "verify-all", "--config", self.config, "--json")
        return result.exit_code, json.loads(result.stdout) if result.stdout else {}


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return Data(tmp_path)


def test_keygen_writes_the_signing_pair(tmp_path: Path) -> None:
    config, settings = ephemeral_config(tmp_path)
    signing = signing_key_path(settings)
    signing.unlink()
    signing.with_suffix(".pub").unlink()
    audit_key_path(settings).unlink()
    result = invoke("audit", "keygen", "--config", config)
    assert result.exit_code == 0, result.output
    assert signing.stat().st_mode & 0o777 == 0o600 and signing.with_suffix(".pub").exists()
    assert invoke("audit", "keygen", "--config", config, "--if-missing").exit_code == 0


def test_rotate_is_eager_and_checkpointed(data: Data) -> None:
    data.append("W-1", 2)
    data.append("W-2", 1)
    result = invoke("audit", "rotate", "--config", data.config)
    assert result.exit_code == 0, result.output
    assert "epoch-start rows in 2 logs" in result.stdout
    for sid in ("W-1", "W-2"):
        last = json.loads((data.logs / f"{sid}.jsonl").read_bytes().splitlines()[-1])
        assert last["action"] == ROTATION_ACTION
    checkpoint = json.loads((data.logs.parent / "checkpoints.jsonl").read_bytes().splitlines()[-1])
    assert set(checkpoint["heads"]) == {"W-1", "W-2"} and len(checkpoint["retired"]) == 1
    code, report = data.verify_all()
    assert code == 0, report
    assert all(log["anchored"] and log["epochs"] == 2 for log in report["logs"])
    assert report["anchors"]["witness_head"] == 1


def test_verify_all_flags_a_log_cut_by_hand_and_a_cut_checkpoint_log(data: Data) -> None:
    data.append("W-1", 3)
    assert invoke("audit", "rotate", "--config", data.config).exit_code == 0
    data.append("W-1", 1)
    code, report = data.verify_all()
    assert code == 0 and report["logs"][0]["unanchored"] == 1  # the window, reported
    path = data.logs / "W-1.jsonl"
    original = path.read_bytes()
    path.write_bytes(b"".join(original.splitlines(keepends=True)[:2]))
    code, report = data.verify_all()
    assert code == 1 and "checkpoint 1 " in report["logs"][0]["error"]
    path.write_bytes(original)
    (data.logs.parent / "checkpoints.jsonl").write_bytes(b"")
    code, report = data.verify_all()
    assert code == 1 and "checkpoint log cut" in report["anchors"]["error"]
    path.unlink()  # a deleted log is named too, when a checkpoint names it
    (data.logs / "W-2.jsonl").write_bytes(b"")
    code, report = data.verify_all()
    assert code == 1


def test_verify_all_unusable_public_key_exits_2(data: Data) -> None:
    data.append("W-1")
    assert invoke("audit", "rotate", "--config", data.config).exit_code == 0
    signing_key_path(data.settings).with_suffix(".pub").write_bytes(b"not a key")
    result = invoke("audit", "verify-all", "--config", data.config)
    assert result.exit_code == 2 and "not a PEM key" in result.stderr


def test_repair_offline(data: Data) -> None:
    data.append("W-1", 2)
    path = data.logs / "W-1.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"acc')
    result = invoke("audit", "repair", "--config", data.config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["bytes_removed"] == 5
    assert json.loads(path.read_bytes().splitlines()[-1])["action"] == REPAIR_ACTION
    # A bad row before the tear is not a torn tail: nothing is cut, exit 1.
    with path.open("ab") as handle:
        handle.write(b'{"x')
    raw = path.read_bytes().replace(b'"torn tail"', b'"torn tale"')
    path.write_bytes(raw)
    result = invoke("audit", "repair", "--config", data.config)
    assert result.exit_code == 1 and path.read_bytes() == raw


def test_settings_load(data: Data) -> None:
    assert load_settings(data.config, environ={}).audit.witness == "dir"


def test_verify_one_log_against_checkpoints_exit_codes(data: Data) -> None:
    data.append("W-1", 3)
    assert invoke("audit", "rotate", "--config", data.config).exit_code == 0
    keys = audit_key_path(data.settings)
    retired = sorted((keys.parent / (keys.name + ".retired")).iterdir())
    pub = signing_key_path(data.settings).with_suffix(".pub")
    checkpoints = data.logs.parent / "checkpoints.jsonl"
    witness = data.settings.data_dir.parent / f"{data.settings.data_dir.name}-witness"
    log = data.logs / "W-1.jsonl"
    args: list[str | Path] = ["audit", "verify", "--key-file", keys, "--key-file", retired[0]]
    args += ["--checkpoints", checkpoints, "--public-key", pub, "--witness-dir", witness, log]
    ok = invoke(*args)
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["anchored"] and body["anchors"]["witness_head"] == 1
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:3]))  # cut by hand
    cut = invoke(*args)
    assert cut.exit_code == 1 and "checkpoint 1 " in json.loads(cut.stdout)["error"]
    log.unlink()
    deleted = invoke(*args)
    assert deleted.exit_code == 1 and "log deleted" in json.loads(deleted.stdout)["error"]
    pub.write_bytes(b"junk")
    assert invoke(*args).exit_code == 2
