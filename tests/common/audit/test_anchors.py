"""Anchored heads (SPEC §8, issue 18): signed checkpoints, the witness, and each attack a chain
alone cannot see — every test here is an attack (or its window) that verified on the code before
issue 18 and must now be caught, naming the checkpoint that contradicts the log."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from lakehouse_common.audit import (
    Keyring,
    append_row,
    build_row,
    now_rfc3339_nanos,
    start_epoch,
    verify_log,
)
from lakehouse_common.audit.anchors import check_witness, verify_subject
from lakehouse_common.audit.checkpoint import (
    CheckpointError,
    CheckpointLog,
    repair_checkpoint_tail,
)
from lakehouse_common.audit.keys import key_id
from lakehouse_common.audit.signing import (
    generate_signing_key,
    load_public_key,
    load_signing_key,
    public_key_path,
)
from lakehouse_common.audit.witness import DirectoryWitness, WitnessError

OLD = b"o" * 40
NEW = b"n" * 40


def row(subject_id: str, n: int, ts: str | None = None) -> dict[str, Any]:
    return build_row(
        subject_id, daemon="queryd", purpose="query", action="read", fields=[f"f{n}"], ts=ts
    )


class House:
    """A data dir's audit state in miniature: logs, checkpoint log, signing key, witness."""

    def __init__(self, root: Path) -> None:
        self.logs = root / "data" / "subjects" / "audit"
        self.logs.mkdir(parents=True)
        self.checkpoint_path = root / "data" / "subjects" / "checkpoints.jsonl"
        self.signing_file = root / "data" / "keys" / "checkpoint.key"
        generate_signing_key(self.signing_file)
        self.private = load_signing_key(self.signing_file)
        self.public = load_public_key(public_key_path(self.signing_file))
        self.witness = DirectoryWitness(root / "data-witness")
        self.keys: bytes | Keyring = OLD

    def path(self, sid: str) -> Path:
        return self.logs / f"{sid}.jsonl"

    def append(self, sid: str, n: int = 1) -> None:
        for i in range(n):
            append_row(self.path(sid), self.keys, row(sid, i))

    def checkpoint(self, *sids: str, retired: dict[str, str] | None = None) -> bytes:
        """What catalogd does: checkpoint the heads of ``sids`` and publish it."""
        heads = {}
        for sid in sids:
            result = verify_log(self.path(sid), self.keys)
            heads[sid] = (result.count, result.tip)
        log = CheckpointLog.load(self.checkpoint_path, self.public)
        line = log.append(self.private, heads, retired=retired)
        self.witness.publish(log.count, line)
        return line

    def checkpoints(self) -> CheckpointLog:
        return CheckpointLog.load(self.checkpoint_path, self.public)

    def verify(self, sid: str) -> Any:
        return verify_subject(self.path(sid), sid, self.keys, self.checkpoints())


@pytest.fixture
def house(tmp_path: Path) -> House:
    return House(tmp_path)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


class TestCheckpointLog:
    def test_checkpoints_chain_by_prev_and_verify_with_the_public_key(self, house: House) -> None:
        house.append("W-1", 2)
        house.checkpoint("W-1")
        house.append("W-2", 1)
        house.checkpoint("W-2")
        log = house.checkpoints()
        assert (log.count, log.error) == (2, None)
        first, second = (json.loads(line) for line in lines(house.checkpoint_path))
        assert first["prev"] == "0" * 64
        assert second["prev"] == log.digests[0]
        assert first["heads"] == {"W-1": [2, verify_log(house.path("W-1"), OLD).tip]}
        assert set(second["heads"]) == {"W-2"}  # only the subjects changed since
        assert log.by_subject["W-1"].checkpoint == 1

    def test_an_altered_checkpoint_fails_its_signature(self, house: House) -> None:
        house.append("W-1", 3)
        house.checkpoint("W-1")
        raw = house.checkpoint_path.read_bytes()
        house.checkpoint_path.write_bytes(raw.replace(b'[3,"', b'[1,"'))
        log = house.checkpoints()
        assert log.count == 0 and log.error is not None and "signature" in log.error
        with pytest.raises(CheckpointError):
            log.append(house.private, {})

    def test_another_public_key_refuses_every_checkpoint(
        self, house: House, tmp_path: Path
    ) -> None:
        house.append("W-1")
        house.checkpoint("W-1")
        generate_signing_key(tmp_path / "other" / "checkpoint.key")
        other = load_public_key(tmp_path / "other" / "checkpoint.pub")
        assert CheckpointLog.load(house.checkpoint_path, other).error is not None

    def test_private_key_is_0600_and_public_key_beside_it(self, house: House) -> None:
        assert house.signing_file.stat().st_mode & 0o777 == 0o600
        assert public_key_path(house.signing_file).name == "checkpoint.pub"
        with pytest.raises(FileExistsError):
            generate_signing_key(house.signing_file)

    def test_a_torn_checkpoint_line_is_cut_and_the_log_extends(self, house: House) -> None:
        house.append("W-1")
        house.checkpoint("W-1")
        with house.checkpoint_path.open("ab") as handle:
            handle.write(b'{"heads":{"W-1":[')
        with pytest.raises(CheckpointError, match="torn"):
            house.checkpoints().append(house.private, {})
        assert repair_checkpoint_tail(house.checkpoint_path) == len(b'{"heads":{"W-1":[')
        house.append("W-1")
        house.checkpoint("W-1")
        assert house.checkpoints().count == 2


class TestAttacks:
    """Each of these verified as intact before issue 18."""

    @pytest.fixture
    def anchored(self, house: House) -> House:
        house.append("W-1", 4)
        house.checkpoint("W-1")
        return house

    def test_untouched_log_is_verified_and_anchored(self, anchored: House) -> None:
        result = anchored.verify("W-1")
        assert result.verified and result.anchored and result.unanchored == 0
        assert result.as_dict()["checkpoint"]["seq"] == 1

    def test_clean_cut_of_the_last_rows(self, anchored: House) -> None:
        path = anchored.path("W-1")
        path.write_bytes(b"".join(lines(path)[:2]))  # at a line boundary
        assert verify_log(path, OLD).verified  # the chain alone sees nothing
        result = anchored.verify("W-1")
        assert not result.verified and not result.anchored
        assert result.error is not None
        assert "holds 2 rows but checkpoint 1" in result.error and "4 rows" in result.error

    def test_emptied_log(self, anchored: House) -> None:
        anchored.path("W-1").write_bytes(b"")
        result = anchored.verify("W-1")
        assert not result.verified
        assert "holds 0 rows but checkpoint 1" in str(result.error) and "emptied" in str(
            result.error
        )

    def test_deleted_log(self, anchored: House) -> None:
        anchored.path("W-1").unlink()
        result = anchored.verify("W-1")
        assert not result.verified and "missing but checkpoint 1" in str(result.error)

    def test_log_replaced_by_an_older_copy(self, anchored: House, tmp_path: Path) -> None:
        older = tmp_path / "older.jsonl"
        shutil.copy(anchored.path("W-1"), older)
        anchored.append("W-1", 3)
        anchored.checkpoint("W-1")
        shutil.copy(older, anchored.path("W-1"))
        result = anchored.verify("W-1")
        assert not result.verified
        assert "holds 4 rows but checkpoint 2" in str(result.error)

    def test_log_rewritten_with_the_same_key_and_count(self, anchored: House) -> None:
        path = anchored.path("W-1")
        path.unlink()
        for i in range(4):  # same count, other content: a re-signed history
            append_row(path, OLD, row("W-1", 10 + i))
        result = anchored.verify("W-1")
        assert verify_log(path, OLD).verified
        assert not result.verified and "row 4 has hmac" in str(result.error)

    def test_dormant_log_rewritten_under_a_retired_key(self, anchored: House) -> None:
        """Eager rotation puts an epoch-start row into the dormant log and checkpoints it; the
        holder of the retired key can neither rewrite the log nor extend it."""
        path = anchored.path("W-1")
        original = path.read_bytes()
        anchored.keys = Keyring(NEW, 2, {1: OLD})
        retired_at = now_rfc3339_nanos()
        assert start_epoch(path, anchored.keys, "W-1") is not None
        anchored.checkpoint("W-1", retired={key_id(OLD): retired_at})
        assert anchored.verify("W-1").verified
        # The forger rewrites the log with the retired key: drop the epoch-start row and add
        # a row of their own, dated now.
        path.write_bytes(original)
        append_row(path, OLD, row("W-1", 99))
        result = anchored.verify("W-1")
        assert not result.verified
        assert "retired at" in str(result.error)  # the row itself is refused ...
        # ... and a backdated forgery is caught by the checkpoint of the epoch-start row.
        path.write_bytes(original)
        append_row(path, OLD, row("W-1", 99, ts="2020-01-01T00:00:00.000000000Z"))
        backdated = anchored.verify("W-1")
        assert not backdated.verified and "row 5 has hmac" in str(backdated.error)

    def test_row_by_a_retired_key_after_retirement_in_a_new_log(self, house: House) -> None:
        house.append("W-1")
        house.checkpoint("W-1", retired={key_id(OLD): "2020-01-01T00:00:00Z"})
        # No checkpoint names W-2 yet: only the retirement catches it.
        house.append("W-2")
        result = house.verify("W-2")
        assert not result.verified and "retired at 2020-01-01T00:00:00Z" in str(result.error)

    def test_cut_of_the_checkpoint_log_itself(self, anchored: House) -> None:
        anchored.append("W-1")
        anchored.checkpoint("W-1")
        assert check_witness(anchored.checkpoints(), anchored.witness).verified
        # Remove the newest checkpoint (and the log's newest row it anchored): the subject now
        # agrees with checkpoint 1, but the witness holds checkpoint 2.
        cp = anchored.checkpoint_path
        cp.write_bytes(b"".join(lines(cp)[:1]))
        path = anchored.path("W-1")
        path.write_bytes(b"".join(lines(path)[:4]))
        assert anchored.verify("W-1").verified
        check = check_witness(anchored.checkpoints(), anchored.witness)
        assert not check.verified and check.head == 2 and check.checkpoints == 1
        assert "checkpoint log cut" in str(check.error)

    def test_checkpoint_log_deleted(self, anchored: House) -> None:
        anchored.checkpoint_path.unlink()
        check = check_witness(anchored.checkpoints(), anchored.witness)
        assert not check.verified and "has only 0" in str(check.error)

    def test_checkpoint_log_rewritten_and_re_signed(self, anchored: House) -> None:
        """Even with the signing key, history the witness holds cannot be rewritten."""
        anchored.checkpoint_path.unlink()
        path = anchored.path("W-1")
        path.write_bytes(b"".join(lines(path)[:1]))
        CheckpointLog.load(anchored.checkpoint_path, anchored.public).append(
            anchored.private, {"W-1": (1, verify_log(path, OLD).tip)}
        )
        assert anchored.verify("W-1").verified  # consistent with the forged checkpoint
        check = check_witness(anchored.checkpoints(), anchored.witness)
        assert not check.verified and "differs from the witness" in str(check.error)


class TestWindow:
    def test_rows_after_the_last_checkpoint_are_not_yet_anchored(self, house: House) -> None:
        house.append("W-1", 2)
        house.checkpoint("W-1")
        house.append("W-1", 3)
        result = house.verify("W-1")
        assert result.verified and result.anchored
        assert result.unanchored == 3
        assert result.as_dict()["checkpoint"]["count"] == 2

    def test_never_checkpointed_log_is_verified_but_not_anchored(self, house: House) -> None:
        house.append("W-1", 2)
        result = house.verify("W-1")
        assert result.verified and not result.anchored and result.unanchored == 2

    def test_unpublished_checkpoints_are_reported(self, house: House) -> None:
        house.append("W-1")
        house.checkpoint("W-1")
        house.append("W-1")
        house.checkpoints().append(
            house.private, {"W-1": (2, verify_log(house.path("W-1"), OLD).tip)}
        )
        check = check_witness(house.checkpoints(), house.witness)
        assert check.verified and check.unwitnessed == 1


class TestDirectoryWitness:
    def test_publish_never_replaces_a_checkpoint(self, tmp_path: Path) -> None:
        witness = DirectoryWitness(tmp_path / "w")
        witness.publish(1, b'{"seq":1}')
        witness.publish(1, b'{"seq":1}')  # idempotent
        with pytest.raises(WitnessError, match="never replaced"):
            witness.publish(1, b'{"seq":1,"x":2}')
        witness.publish(2, b'{"seq":2}')
        head = witness.head()
        assert head is not None and (head.seq, head.line) == (2, b'{"seq":2}')
        assert (tmp_path / "w" / "checkpoint-000000000001.json").stat().st_mode & 0o222 == 0

    def test_unwritable_witness_raises(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_bytes(b"")
        with pytest.raises(WitnessError, match="cannot publish"):
            DirectoryWitness(blocker / "w").publish(1, b"{}")

    def test_empty_witness_has_no_head(self, tmp_path: Path) -> None:
        assert DirectoryWitness(tmp_path / "none").head() is None


def test_witness_dir_defaults_outside_the_data_dir(tmp_path: Path) -> None:
    from lakehouse_common.config import ConfigError, load_settings, witness_dir_path

    config = tmp_path / "c.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    settings = load_settings(config, environ={})
    assert witness_dir_path(settings) == tmp_path / "data-witness"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[audit]\nwitness_dir = "data/w"\n'
    )
    with pytest.raises(ConfigError, match="inside server.data_dir"):
        load_settings(config, environ={})
    assert os.path.isabs(str(witness_dir_path(settings)))
