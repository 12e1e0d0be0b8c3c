"""Durable append-only JSON-lines files with one writer task and group commit (SPEC §5).

Used by observerd (one `AppendLog` per `_kb/{stream}.jsonl`) and pathwayd (its pathway log).

- **One writer.** Appends are queued to the log's single writer task; concurrent appends that
  queue while a write is in progress (or within `commit_window_s`) are gathered and written with
  one `write` and one `fdatasync` — group commit. `append` returns only after its lines are
  fsync'd, so an acknowledged line survives `kill -9`.
- **Lines are never torn.** A batch is written with one append-mode write; if the process dies
  mid-write, the file ends in a partial line. `open()` repairs that on start: the bytes after
  the last newline are truncated (and logged). A failed write is truncated back the same way
  at once; if even that fails the log refuses further appends until the daemon restarts.
- **Readers** see only committed lines: `read_lines(since, limit)` pages by 0-based line
  offset, using a sparse in-memory index (the byte offset of every `CHECKPOINT_EVERY`-th line,
  built by the scan in `open()`), so a page costs a seek, not a read from the start.

The file is created on the first append (and its directory entry fsync'd), so a log that was
never written leaves no empty file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lakehouse_common.durable import fsync_dir, make_dirs_durably, write_all
from lakehouse_common.errors import ServiceUnavailable
from lakehouse_common.logging import get_logger

CHECKPOINT_EVERY: Final = 1024
# A page stops growing past this many bytes (at least one line is always returned).
MAX_PAGE_BYTES: Final = 16 * 1024 * 1024
_CHUNK: Final = 1024 * 1024

log = get_logger("lakehouse.appendlog")

# (lines in the commit, appends in the commit, seconds spent writing + fsyncing)
CommitHook = Callable[[int, int, float], None]


def repair_tail(path: Path) -> int:
    """Truncate a partial last line (no trailing newline); answer the bytes removed."""
    with path.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # Walk back in chunks to the last newline.
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - _CHUNK)
            fh.seek(start)
            chunk = fh.read(end - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            end = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


@dataclass(frozen=True)
class Scan:
    size: int
    lines: int
    # checkpoints[i] = byte offset of line i * CHECKPOINT_EVERY.
    checkpoints: list[int]


def scan(path: Path) -> Scan:
    """Count the lines of a (repaired) file and build its sparse line index."""
    checkpoints = [0]
    lines = 0
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            pos = 0
            while (idx := chunk.find(b"\n", pos)) >= 0:
                lines += 1
                if lines % CHECKPOINT_EVERY == 0:
                    checkpoints.append(offset + idx + 1)
                pos = idx + 1
            offset += len(chunk)
    return Scan(size=offset, lines=lines, checkpoints=checkpoints)


@dataclass
class _Pending:
    lines: Sequence[bytes]
    future: asyncio.Future[tuple[int, int]]


class AppendLog:
    """One JSON-lines file: group-committed durable appends and paged reads of committed lines.

    `open()` (blocking: run it off the loop) repairs and scans the file; `start()` starts the
    writer; `close()` drains what is queued and stops it.
    """

    def __init__(
        self,
        path: Path,
        *,
        commit_window_s: float = 0.0,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.path = path
        self.commit_window_s = commit_window_s
        self.on_commit = on_commit
        self.size = 0
        self.lines = 0
        self._checkpoints: list[int] = [0]
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._fd: int | None = None
        self._closing = False
        self._broken: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> int:
        """Repair a torn tail and count the lines; answer the bytes the repair removed."""
        if not self.path.exists():
            return 0
        removed = repair_tail(self.path)
        if removed:
            log.warning("repaired torn tail", path=str(self.path), bytes_removed=removed)
        found = scan(self.path)
        self.size, self.lines, self._checkpoints = found.size, found.lines, found.checkpoints
        return removed

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name=f"appendlog-{self.path.name}")

    async def close(self) -> None:
        """Write everything already queued, then stop the writer and close the file."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- appends --------------------------------------------------------------------------------

    async def append(self, lines: Sequence[bytes]) -> tuple[int, int]:
        """Append `lines` (each a complete line ending in `\\n`, none containing another);
        return `(first_line, total_lines)` once they are fsync'd."""
        if self._closing or self._task is None:
            raise ServiceUnavailable(f"{self.path.name} is not accepting appends (shutting down)")
        if self._broken is not None:
            raise ServiceUnavailable(
                f"{self.path.name} refuses appends until restart: {self._broken}"
            )
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(lines, future))
        return await asyncio.shield(future)

    async def _run(self) -> None:
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            if self.commit_window_s > 0:
                await asyncio.sleep(self.commit_window_s)
            group = [first]
            while True:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            try:
                await self._commit(group)
            except Exception as exc:  # never leave an appender waiting on a dead writer
                log.exception("commit failed", path=str(self.path))
                err = ServiceUnavailable(f"cannot write {self.path.name}: {exc}")
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(err)

    async def _commit(self, group: list[_Pending]) -> None:
        if self._broken is not None:
            exc = ServiceUnavailable(f"{self.path.name} refuses appends: {self._broken}")
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        buf = b"".join(line for pending in group for line in pending.lines)
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._write, buf)
        except OSError as exc:
            log.error("append failed", path=str(self.path), error=str(exc))
            err = ServiceUnavailable(f"cannot write {self.path.name}: {exc.strerror or exc}")
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(err)
            return
        elapsed = time.perf_counter() - started
        offset = self.size
        line_no = self.lines
        for pending in group:
            first_line = line_no
            for line in pending.lines:
                line_no += 1
                offset += len(line)
                if line_no % CHECKPOINT_EVERY == 0:
                    self._checkpoints.append(offset)
            if not pending.future.done():
                pending.future.set_result((first_line, line_no))
        self.size, self.lines = offset, line_no
        if self.on_commit is not None:
            self.on_commit(sum(len(p.lines) for p in group), len(group), elapsed)

    def _write(self, buf: bytes) -> None:
        """One append + fdatasync; on failure, cut the file back to the committed size."""
        if self._fd is None:
            make_dirs_durably(self.path.parent)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if created:
                fsync_dir(self.path.parent)
        try:
            write_all(self._fd, buf)
            os.fdatasync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, self.size)
                os.fdatasync(self._fd)
            except OSError as exc:
                self._broken = f"could not undo a failed write: {exc}"
            raise

    # -- reads ----------------------------------------------------------------------------------

    def read_lines(self, since: int, limit: int) -> list[bytes]:
        """Up to `limit` committed lines from line `since` on (blocking: run it off the loop)."""
        size, total = self.size, self.lines
        if since >= total or limit <= 0:
            return []
        slot = min(since // CHECKPOINT_EVERY, len(self._checkpoints) - 1)
        offset = self._checkpoints[slot]
        skip = since - slot * CHECKPOINT_EVERY
        want = min(limit, total - since)
        out: list[bytes] = []
        taken = 0
        with self.path.open("rb") as fh:
            fh.seek(offset)
            while len(out) < want and fh.tell() < size:
                line = fh.readline()
                if not line.endswith(b"\n"):
                    break
                if skip:
                    skip -= 1
                    continue
                out.append(line)
                taken += len(line)
                if taken >= MAX_PAGE_BYTES:
                    break
        return out

    def iter_lines(self) -> Iterator[bytes]:
        """Every committed line, in order (blocking)."""
        if self.lines == 0:
            return
        size = self.size
        with self.path.open("rb") as fh:
            while fh.tell() < size:
                line = fh.readline()
                if not line.endswith(b"\n"):
                    return
                yield line
