"""Streaming JSONL in, idempotent files out: the I/O every distillation stage shares (SPEC §7).

Reading (:func:`read_lines`) walks a file line by line with each line's 0-based number and byte
offset, never holding more than one line, so a stage's memory does not grow with its input.

Writing goes through :class:`OutputTree`: a stage writes its files into hidden temporary files
next to their final names and, at :meth:`OutputTree.commit`, each temporary file replaces its
final one only when the bytes differ (fsync'd, then renamed, then the directory fsync'd); files
left in the tree from an earlier run that this run did not produce are removed. So a stage is a
pure function of its input: a re-run over the same input rewrites nothing and every file stays
byte-identical (same inode, same mtime), and a crash mid-stage leaves the previous outputs whole.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from lakehouse_common.durable import TEMP_PREFIX, atomic_write, fsync_dir, fsync_file

__all__ = [
    "CommitResult",
    "FileDigest",
    "OutputTree",
    "ProgressHook",
    "read_lines",
    "sha256_file",
    "write_if_changed",
]

# Called with the number of input bytes consumed since the last call (progress bars).
ProgressHook = Callable[[int], None]

# The kernel's temporary names start the same way, so `_remove_stale` sweeps theirs too.
_TMP_PREFIX: Final = TEMP_PREFIX
_MAX_OPEN: Final = 16


def read_lines(path: Path) -> Iterator[tuple[int, int, bytes, bool]]:
    """`(line_number, byte_offset, line, complete)` for each line of `path`; `line` keeps no
    trailing newline, `complete` is false for a last line with no newline (a write still in
    progress, or a torn tail)."""
    with path.open("rb") as fh:
        offset = 0
        for number, raw in enumerate(fh):
            complete = raw.endswith(b"\n")
            yield number, offset, raw[:-1] if complete else raw, complete
            offset += len(raw)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless it already holds exactly these bytes; True when
    the file was (re)written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return True


@dataclass(frozen=True)
class FileDigest:
    """One output file as a receipt lists it."""

    path: str  # relative to the data dir
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256}


@dataclass
class _Pending:
    tmp: Path
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    rows: int = 0
    size: int = 0


@dataclass(frozen=True)
class CommitResult:
    files: list[FileDigest]  # every file the stage produced, by path
    written: list[str]  # of those, the ones whose bytes changed
    removed: list[str]  # files of an earlier run that this run did not produce


class OutputTree:
    """The `*.jsonl` files of one stage below `root` (see the module docstring)."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.data_dir = data_dir
        self._pending: dict[str, _Pending] = {}
        # A few handles stay open (LRU): a stage writes mostly one file at a time.
        self._open: OrderedDict[str, BinaryIO] = OrderedDict()

    def _reopen(self, relative: str) -> tuple[_Pending, BinaryIO]:
        pending = self._pending.get(relative)
        if pending is None:
            final = self.root / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            pending = _Pending(final.with_name(f"{_TMP_PREFIX}{final.name}"))
            self._pending[relative] = pending
            handle = pending.tmp.open("wb")
        else:
            handle = pending.tmp.open("ab")
        self._open[relative] = handle
        if len(self._open) > _MAX_OPEN:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return pending, handle

    def write(self, relative: str, line: bytes) -> None:
        """Append one line (`line` without its newline) to the file `root/relative`."""
        handle = self._open.get(relative)
        if handle is None:
            pending, handle = self._reopen(relative)
        else:
            pending = self._pending[relative]
        data = line + b"\n"
        handle.write(data)
        pending.digest.update(data)
        pending.rows += 1
        pending.size += len(data)

    def touch(self, relative: str) -> None:
        """Produce `root/relative` even if no line is written to it."""
        if relative not in self._open:
            self._reopen(relative)

    def discard(self) -> None:
        """Abandon this run's temporary files (the previous outputs stay as they were)."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        for pending in self._pending.values():
            pending.tmp.unlink(missing_ok=True)
        self._pending.clear()

    def commit(self) -> CommitResult:
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        files: list[FileDigest] = []
        written: list[str] = []
        changed_dirs: set[Path] = set()
        for relative, pending in sorted(self._pending.items()):
            final = self.root / relative
            sha = pending.digest.hexdigest()
            name = final.relative_to(self.data_dir).as_posix()
            files.append(FileDigest(name, pending.rows, pending.size, sha))
            try:
                same = final.stat().st_size == pending.size and sha256_file(final) == sha
            except FileNotFoundError:
                same = False
            if same:
                pending.tmp.unlink()
            else:
                # Data first, then the rename; each directory is fsync'd once, at the end.
                fsync_file(pending.tmp)
                os.replace(pending.tmp, final)
                # The file's directory and every new directory above it, up to the root.
                changed_dirs.update(
                    d for d in (final.parent, *final.parent.parents) if self.root in (d, *d.parents)
                )
                written.append(name)
        for directory in sorted(changed_dirs):
            fsync_dir(directory)
        produced = {self.root / relative for relative in self._pending}
        self._pending.clear()
        removed = self._remove_stale(produced)
        return CommitResult(files, written, removed)

    def _remove_stale(self, produced: set[Path]) -> list[str]:
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        for path in sorted(self.root.rglob("*")):
            if not path.is_file():
                continue
            stale_tmp = path.name.startswith(_TMP_PREFIX)
            if stale_tmp or (path.suffix == ".jsonl" and path not in produced):
                path.unlink()
                if not stale_tmp:
                    removed.append(path.relative_to(self.data_dir).as_posix())
        for directory in sorted(self.root.rglob("*"), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        return removed
