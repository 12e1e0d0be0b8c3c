"""Power-loss proof of every durable log (issue 18): lose everything not fsync'd, restart, check.

`tests/support/powerloss.py` records each file's durable content at every fsync/fdatasync and
each directory's durable entries at every directory fsync, then rebuilds the state as of many
crash points and runs the component's own recovery on it. The workloads (one per durable
component) are in `tests/support/powerloss_workloads.py`; `make fuzz` runs them longer
(`tests/fuzz/test_power_loss_long.py`).

The first classes test the harness itself; `TestHarnessCanFail` removes one fsync at a time
and asserts the harness reports a lost acknowledged write — proof that a passing run means
something.
"""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from lakehouse_common.audit.anchors import check_witness
from lakehouse_common.audit.checkpoint import CHECKPOINT_LOG, CheckpointLog
from lakehouse_common.audit.signing import generate_signing_key, load_signing_key
from lakehouse_common.audit.witness import DirectoryWitness
from lakehouse_common.durable import fsync_dir
from tests.support.powerloss import PowerLossRecorder, choose_points, run_power_loss
from tests.support.powerloss_workloads import WORKLOADS

# `make test`: every workload at twice its base size, every crash point up to this many each
# (a few hundred points in all, a few seconds).
SCALE = 2
BUDGET = 80


def _append(path: Path, data: bytes, *, sync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _crash(recorder: PowerLossRecorder, tmp_path: Path, point: int | None = None) -> Path:
    target = tmp_path / f"crash-{point}"
    recorder.materialise(len(recorder.events) if point is None else point, target)
    return target


class TestRecorder:
    def test_unsynced_bytes_are_lost_and_synced_ones_kept(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            fsync_dir(rec.root)  # nothing yet: the file's name comes with the next one
            _append(rec.root / "log", b"one\n")
            fsync_dir(rec.root)
            _append(rec.root / "log", b"two\n", sync=False)
        assert (_crash(rec, tmp_path) / "log").read_bytes() == b"one\n"

    def test_a_new_name_needs_its_directory_fsync(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            _append(rec.root / "log", b"one\n")
            before = len(rec.events)
            fsync_dir(rec.root)
        assert not (_crash(rec, tmp_path, before) / "log").exists()
        assert (_crash(rec, tmp_path) / "log").read_bytes() == b"one\n"

    def test_a_rename_without_directory_fsync_keeps_the_old_file(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            _append(rec.root / "state", b"old")
            fsync_dir(rec.root)
            _append(rec.root / "state.tmp", b"new")
            os.replace(rec.root / "state.tmp", rec.root / "state")
            before = len(rec.events)
            fsync_dir(rec.root)
        assert os.listdir(_crash(rec, tmp_path, before)) == ["state"]
        assert (_crash(rec, tmp_path, before) / "state").read_bytes() == b"old"
        assert (_crash(rec, tmp_path) / "state").read_bytes() == b"new"

    def test_a_new_directory_needs_its_parent_fsync(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            (rec.root / "sub").mkdir()
            _append(rec.root / "sub" / "log", b"one\n")
            fsync_dir(rec.root / "sub")
            before = len(rec.events)
            fsync_dir(rec.root)
        assert not (_crash(rec, tmp_path, before) / "sub").exists()
        assert (_crash(rec, tmp_path) / "sub" / "log").read_bytes() == b"one\n"

    def test_what_existed_before_recording_is_durable(self, tmp_path: Path) -> None:
        (tmp_path / "live" / "d").mkdir(parents=True)
        (tmp_path / "live" / "d" / "f").write_bytes(b"kept")
        with PowerLossRecorder(tmp_path / "live") as rec:
            (rec.root / "d" / "f").write_bytes(b"changed, never fsync'd")
        assert rec.points == range(len(rec.events), len(rec.events) + 1)
        assert (_crash(rec, tmp_path) / "d" / "f").read_bytes() == b"kept"

    def test_fdatasync_counts_and_fsyncs_elsewhere_are_ignored(self, tmp_path: Path) -> None:
        (tmp_path / "elsewhere").mkdir()
        with PowerLossRecorder(tmp_path / "live") as rec:
            _append(tmp_path / "elsewhere" / "f", b"x")
            fd = os.open(rec.root / "log", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"data")
            os.fdatasync(fd)
            os.close(fd)
            fsync_dir(rec.root)
        assert [e.path for e in rec.events[rec.baseline :]] == [
            str(rec.root / "log"),
            str(rec.root),
        ]
        assert (_crash(rec, tmp_path) / "log").read_bytes() == b"data"

    def test_a_reused_name_is_a_new_file(self, tmp_path: Path) -> None:
        """Recorded inodes stay pinned, so a new file never inherits an old one's content."""
        with PowerLossRecorder(tmp_path / "live") as rec:
            _append(rec.root / "a", b"first")
            fsync_dir(rec.root)
            os.unlink(rec.root / "a")
            _append(rec.root / "a", b"", sync=False)
            fsync_dir(rec.root)
        assert (_crash(rec, tmp_path) / "a").read_bytes() == b""

    def test_torn_keeps_a_prefix_of_the_next_synced_bytes(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            _append(rec.root / "log", b"one\n")
            fsync_dir(rec.root)
            crash_at = len(rec.events)
            _append(rec.root / "log", b"two-three-four\n")
        seen = set()
        for seed in range(40):
            target = tmp_path / f"torn-{seed}"
            rec.materialise(crash_at, target, torn=random.Random(seed))
            data = (target / "log").read_bytes()
            assert b"one\ntwo-three-four\n".startswith(data) and data.startswith(b"one\n")
            seen.add(len(data))
        assert len(seen) > 3  # really torn at various lengths, not always whole or empty

    def test_acks_record_the_durability_point(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            rec.ack("before")
            _append(rec.root / "log", b"x")
            rec.ack("after")
        assert rec.acked_by(rec.baseline) == ["before"]
        assert rec.acked_by(len(rec.events)) == ["before", "after"]

    def test_skip_fsync_removes_the_chosen_calls(self, tmp_path: Path) -> None:
        with PowerLossRecorder(tmp_path / "live") as rec:
            with rec.skip_fsync(lambda call, fd: stat.S_ISREG(os.fstat(fd).st_mode)):
                _append(rec.root / "log", b"lost")
                fsync_dir(rec.root)
        assert (_crash(rec, tmp_path) / "log").read_bytes() == b""

    def test_recording_restores_os_fsync(self, tmp_path: Path) -> None:
        real = os.fsync, os.fdatasync
        with PowerLossRecorder(tmp_path / "live"):
            assert os.fsync is not real[0]
        assert (os.fsync, os.fdatasync) == real

    def test_choose_points_keeps_the_ends(self) -> None:
        assert choose_points(range(3, 8), 10, random.Random(0)) == [3, 4, 5, 6, 7]
        chosen = choose_points(range(0, 1000), 20, random.Random(0))
        assert len(chosen) == 20 and chosen[0] == 0 and chosen[-1] == 999


@pytest.mark.fault
class TestEveryDurableLogSurvivesPowerLoss:
    """Every acknowledged write survives a power cut at any point and every log verifies."""

    @pytest.mark.parametrize("name", sorted(WORKLOADS))
    def test_acknowledged_writes_survive(self, name: str, tmp_path: Path) -> None:
        report = run_power_loss(WORKLOADS[name](SCALE), tmp_path, budget=BUDGET, seed=18)
        assert report.acks > 0 and report.points_checked > 10, report.describe()
        assert not report.failures, report.describe()

    @pytest.mark.parametrize(
        "name", sorted(n for n, make in WORKLOADS.items() if make(1).torn_tails)
    )
    def test_torn_unacknowledged_tails_are_repaired(self, name: str, tmp_path: Path) -> None:
        report = run_power_loss(WORKLOADS[name](SCALE), tmp_path, budget=BUDGET, seed=18, torn=True)
        assert report.acks > 0 and report.points_checked > 10, report.describe()
        assert not report.failures, report.describe()


@pytest.mark.fault
class TestCheckpointLogFindings:
    def test_an_empty_checkpoint_log_left_behind_gets_its_name_fsynced(
        self, tmp_path: Path
    ) -> None:
        """Found while adding the `audit_checkpoints` workload: the checkpoint log fsync'd its
        directory only when this very append created the file. An empty log left by an append
        that failed (ENOSPC, truncated back) or by a process killed after `open` was extended,
        published, and lost with its name at the power cut: the witness then named a cut."""
        public = generate_signing_key(tmp_path / "checkpoint.key")
        key = load_signing_key(tmp_path / "checkpoint.key")
        witness = DirectoryWitness(tmp_path / "witness")
        (tmp_path / "live" / "subjects").mkdir(parents=True)
        with PowerLossRecorder(tmp_path / "live") as rec:
            path = rec.root / "subjects" / CHECKPOINT_LOG
            path.touch()  # what the failed or killed first append left: never fsync'd
            line = CheckpointLog(path, public).append(key, {"subj-a": (1, "a" * 64)})
            witness.publish(1, line)
        crashed = CheckpointLog.load(_crash(rec, tmp_path) / "subjects" / CHECKPOINT_LOG, public)
        assert check_witness(crashed, witness).error is None
        assert crashed.count == 1


def _is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


# One fsync removed per case (as if its line were deleted): the harness must see a lost write.
REMOVED_FSYNCS = {
    "appendlog fdatasync": ("pathwayd", lambda call, fd: call == "fdatasync"),
    "appendlog directory fsync after create": (
        "pathwayd",
        lambda call, fd: _is_dir(fd) and _path(fd).endswith("/pathways"),
    ),
    "session log fsync": ("session_log", lambda call, fd: _path(fd).endswith(".jsonl")),
    "session log directory fsync": (
        "session_log",
        lambda call, fd: _is_dir(fd) and _path(fd).endswith("/sessions"),
    ),
    "audit row fsync": ("audit", lambda call, fd: _path(fd).endswith(".jsonl")),
    "audit checkpoint fsync": (
        "audit_checkpoints",
        lambda call, fd: _path(fd).endswith("/checkpoints.jsonl"),
    ),
    # `subjects/` is fsync'd once before the checkpoint log exists (the subject logs' directory
    # is created durably); this removes the fsync that makes the new checkpoint log's name last.
    "audit checkpoint log directory fsync after create": (
        "audit_checkpoints",
        lambda call, fd: (
            _is_dir(fd)
            and _path(fd).endswith("/subjects")
            and os.path.exists(_path(fd) + "/checkpoints.jsonl")
        ),
    ),
    "store staged-file fsync": ("store_catalog", lambda call, fd: _path(fd).endswith(".part")),
    "store publish directory fsync": (
        "store_catalog",
        lambda call, fd: _is_dir(fd) and "/objects/lakehouse/" in _path(fd) + "/",
    ),
    "vectord WAL fsync": ("vectord", lambda call, fd: _path(fd).endswith(".log")),
    "vectord index-directory fsyncs (new WAL segment, snapshot rename)": (
        "vectord",
        lambda call, fd: _is_dir(fd) and os.path.basename(_path(fd)) in ("alpha", "beta"),
    ),
    "data directory fsync of a new top-level directory": (
        "observerd",
        lambda call, fd: _is_dir(fd) and _path(fd).endswith("/live"),
    ),
}


@pytest.mark.fault
class TestHarnessCanFail:
    @pytest.mark.parametrize("case", sorted(REMOVED_FSYNCS))
    def test_removing_one_fsync_loses_an_acknowledged_write(
        self, case: str, tmp_path: Path
    ) -> None:
        name, skip = REMOVED_FSYNCS[case]
        report = run_power_loss(
            WORKLOADS[name](1), tmp_path, budget=BUDGET, seed=18, skip_fsync=skip
        )
        assert report.failures, f"{case}: no lost write found\n{report.describe()}"
        problems = " ".join(p for f in report.failures for p in f.problems)
        assert "lost" in problems or "found absent" in problems or "found b" in problems, (
            report.describe()
        )
