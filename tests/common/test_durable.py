"""The kernel's durable-file helpers: atomic replace, fsyncs really issued, nothing left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lakehouse_common import durable
from lakehouse_common.durable import (
    TEMP_PREFIX,
    atomic_write,
    fsync_dir,
    fsync_file,
    replacing,
    write_all,
)


class FsyncSpy:
    """Counts `os.fsync` calls by what the descriptor is (a directory or a file)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dirs: list[int] = []  # inode of every directory fsync'd
        self.files: list[int] = []  # inode of every file fsync'd
        real = os.fsync

        def spy(fd: int) -> None:
            st = os.fstat(fd)
            (self.dirs if stat.S_ISDIR(st.st_mode) else self.files).append(st.st_ino)
            real(fd)

        monkeypatch.setattr(os, "fsync", spy)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> FsyncSpy:
    return FsyncSpy(monkeypatch)


class TestFsync:
    def test_fsync_dir_fsyncs_the_directory(self, tmp_path: Path, fsyncs: FsyncSpy) -> None:
        fsync_dir(tmp_path)
        assert fsyncs.dirs == [tmp_path.stat().st_ino]
        assert fsyncs.files == []

    def test_fsync_dir_refuses_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"x")
        with pytest.raises(NotADirectoryError):
            fsync_dir(path)

    def test_fsync_dir_of_a_missing_directory_raises(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            fsync_dir(tmp_path / "gone")

    def test_fsync_file_fsyncs_the_file(self, tmp_path: Path, fsyncs: FsyncSpy) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"x")
        fsync_file(path)
        assert fsyncs.files == [path.stat().st_ino]
        assert fsyncs.dirs == []


class TestWriteAll:
    def test_loops_over_short_writes(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = os.write
        calls: list[int] = []

        def short_write(fd: int, data: bytes | memoryview) -> int:
            calls.append(len(data))
            return real(fd, bytes(data)[:3])  # never more than 3 bytes at a time

        monkeypatch.setattr(os, "write", short_write)
        path = tmp_path / "f"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            write_all(fd, b"0123456789")
        finally:
            os.close(fd)
        assert path.read_bytes() == b"0123456789"
        assert calls == [10, 7, 4, 1]


class TestAtomicWrite:
    def test_creates_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "f.json"
        atomic_write(path, b"{}")
        assert path.read_bytes() == b"{}"
        assert [p.name for p in tmp_path.iterdir()] == ["f.json"]

    def test_replaces_atomically_with_a_new_inode(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"old content")
        reader = path.open("rb")  # a reader that opened the old file keeps the old bytes
        old_inode = path.stat().st_ino
        atomic_write(path, b"new")
        assert path.read_bytes() == b"new"
        assert path.stat().st_ino != old_inode
        assert reader.read() == b"old content"
        reader.close()
        assert [p.name for p in tmp_path.iterdir()] == ["f"]

    def test_fsyncs_the_new_file_then_the_directory(self, tmp_path: Path, fsyncs: FsyncSpy) -> None:
        path = tmp_path / "f"
        atomic_write(path, b"data")
        assert fsyncs.files == [path.stat().st_ino]  # the temp file, now renamed to `path`
        assert fsyncs.dirs == [tmp_path.stat().st_ino]

    def test_failed_write_leaves_no_temp_file_and_the_old_content(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"old")

        def disk_full(fd: int, data: bytes | memoryview) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", disk_full)
        with pytest.raises(OSError, match="No space"):
            atomic_write(path, b"new")
        assert path.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["f"]

    def test_failed_fsync_leaves_no_temp_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(OSError, match="Input/output"):
            atomic_write(tmp_path / "f", b"new")
        assert list(tmp_path.iterdir()) == []

    def test_failed_rename_leaves_no_temp_file(self, tmp_path: Path) -> None:
        target = tmp_path / "d"
        (target / "child").mkdir(parents=True)  # a non-empty directory cannot be replaced
        with pytest.raises(OSError):
            atomic_write(target, b"x")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]

    @pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
    def test_mode_is_exact_whatever_the_umask(self, tmp_path: Path, mode: int) -> None:
        old_umask = os.umask(0o077)
        try:
            atomic_write(tmp_path / "f", b"k", mode=mode)
        finally:
            os.umask(old_umask)
        assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode

    def test_mode_replaces_the_old_files_mode(self, tmp_path: Path) -> None:
        path = tmp_path / "key"
        path.write_bytes(b"old")
        path.chmod(0o644)
        atomic_write(path, b"secret", mode=0o600)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_without_mode_the_umask_applies(self, tmp_path: Path) -> None:
        old_umask = os.umask(0o027)
        try:
            atomic_write(tmp_path / "f", b"x")
        finally:
            os.umask(old_umask)
        assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640

    def test_temp_file_is_named_for_sweepers(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: list[str] = []
        real = os.replace

        def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
            seen.append(Path(src).name)
            real(src, dst)

        monkeypatch.setattr(durable.os, "replace", spy)
        atomic_write(tmp_path / "out.jsonl", b"x")
        assert len(seen) == 1
        assert seen[0].startswith(f"{TEMP_PREFIX}out.jsonl.")


class TestReplacing:
    def test_publishes_what_the_body_wrote(self, tmp_path: Path, fsyncs: FsyncSpy) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"old")
        with replacing(path) as tmp:
            assert tmp.parent == tmp_path
            tmp.write_bytes(b"new")
            assert path.read_bytes() == b"old"  # not published before the body ends
        assert path.read_bytes() == b"new"
        assert fsyncs.files == [path.stat().st_ino]
        assert fsyncs.dirs == [tmp_path.stat().st_ino]
        assert [p.name for p in tmp_path.iterdir()] == ["f"]

    def test_body_failure_removes_the_temp_file(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"old")
        with pytest.raises(RuntimeError), replacing(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
        assert path.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["f"]

    def test_body_that_wrote_nothing_fails_cleanly(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError), replacing(tmp_path / "f"):
            pass
        assert list(tmp_path.iterdir()) == []
