"""Durable files: the fsyncs and the atomic replace that SPEC §4 ("temp file + fsync + rename")
and every append-only log rely on, written once (issue 15).

- `fsync_dir(directory)` makes a directory's entries (a created, renamed or removed name)
  durable; `fsync_file(path)` and `fsync_fd` do the same for a file's content.
- `make_dirs_durably(directory)` is `mkdir -p` whose new names survive a power loss.
- `write_all(fd, data)` writes every byte (`os.write` may write fewer than asked).
- `create_file(path, data, mode=...)` creates a new file (never replaces one) with exactly that
  mode, holding `data`, fsync'd.
- `atomic_write(path, data, mode=...)` replaces `path` with `data`: readers see the old file or
  the whole new one, never a mix, and after it returns the new file survives a power loss.
- `replacing(path)` is the same protocol for a writer that needs a path to write to (a Parquet
  writer): it yields a temporary path next to `path` and publishes it on a clean exit.

A failure before the rename removes the temporary file, so nothing is left behind. Temporary
names start with `TEMP_PREFIX`, so a sweeper can recognise the leftovers of a crash.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

TEMP_PREFIX: Final = ".tmp-"

StrPath = str | os.PathLike[str]


def fsync_dir(directory: StrPath) -> None:
    """Fsync `directory` itself, so that the names created, renamed or removed in it persist.

    Opened with `O_DIRECTORY` (a file passed by mistake raises `NotADirectoryError` instead of
    being fsync'd silently) and `O_CLOEXEC` (a daemon spawning a child meanwhile does not leak
    the descriptor). Errors propagate: a caller that tolerates a vanished directory says so.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: StrPath) -> None:
    """Fsync the content of the file at `path` (written and closed by someone else)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_MKDIRS_LOCK = threading.Lock()


def make_dirs_durably(directory: StrPath, *, mode: int = 0o777) -> None:
    """`mkdir -p directory`, fsyncing the parent of every directory it creates (each created with
    `mode`, less the umask: 0o700 for a private directory).

    `Path.mkdir(parents=True)` alone leaves a new directory's name in the page cache: a power
    loss drops it, and with it every file below that was fsync'd and acknowledged — the
    power-loss harness (issue 18) found this for `sessions/`, `_kb/`, `pathways/`,
    `subjects/audit/`, `objects/` and `vectors/` in a fresh data directory.
    """
    # Held while checking too: a directory another thread just created is not durable until
    # that thread's fsync returns (the harness caught two streams' first appends racing).
    with _MKDIRS_LOCK:
        missing: list[Path] = []
        here = Path(directory)
        while not here.is_dir():
            missing.append(here)
            if here.parent == here:
                break
            here = here.parent
        for path in reversed(missing):
            # Created meanwhile by another process: fsync anyway, we may answer before it does.
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, mode)
            fsync_dir(path.parent)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of `data` to `fd`, looping over short writes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def create_file(path: StrPath, data: bytes | bytearray | memoryview, *, mode: int) -> None:
    """Create the file `path` holding `data`, fsync'd, with exactly `mode` (umask ignored) from
    its creation on. `FileExistsError` if `path` exists: nothing is ever overwritten. The name
    is durable once the caller fsyncs the directory (a caller creating several files does it
    once)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: StrPath) -> Path:
    """A fresh temporary name in `path`'s directory (same file system, so `os.replace` is a
    rename)."""
    target = Path(path)
    return target.with_name(f"{TEMP_PREFIX}{target.name}.{secrets.token_hex(6)}")


def _publish(tmp: Path, target: Path) -> None:
    """Rename the fsync'd `tmp` over `target`, then make the rename durable."""
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write(
    path: StrPath, data: bytes | bytearray | memoryview, *, mode: int | None = None
) -> None:
    """Replace the file at `path` with `data`, atomically and durably.

    A temporary file in the same directory is written, fsync'd and renamed over `path`; then
    the directory is fsync'd. With `mode` the new file has exactly that mode (umask ignored)
    from its creation on, so a private file (a key, mode 0o600) is never readable by others,
    not even briefly; without it, the mode is 0o666 less the umask, as for `open(path, "wb")`.
    On any failure the temporary file is removed and `path` keeps its old content.
    """
    target = Path(path)
    tmp = temp_path_for(target)
    fd = os.open(
        tmp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
        0o666 if mode is None else mode,
    )
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _publish(tmp, target)


@contextlib.contextmanager
def replacing(path: StrPath) -> Iterator[Path]:
    """Yield a temporary path next to `path` to write the new file to; on a clean exit it is
    fsync'd and atomically renamed over `path` (then the directory is fsync'd). When the body
    raises, the temporary file (if the body created it) is removed and `path` is untouched."""
    target = Path(path)
    tmp = temp_path_for(target)
    try:
        yield tmp
        fsync_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _publish(tmp, target)
