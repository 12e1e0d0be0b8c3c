"""Durable indexes (SPEC §5): WAL before acknowledgement, background snapshots, replay on start.

Layout of `<data_dir>/vectors/<index>/`:

    index.json              parameters (dim, space, M, ef_construction, created_at)
    wal-<seq>.log           WAL segments (`wal.py`); the highest is the active one
    snapshot-<seq>/         hnsw.bin + state.json + manifest.json; covers every segment < seq

Write path (one writer at a time per index, `_write_mutex`): validate → append the record to
the active segment and fsync → apply to the in-memory index → acknowledge. The WAL order is
therefore the apply order and replay rebuilds the same ids, vectors and metadata.

Snapshot protocol (background; at most one per index at a time):
1. holding the write mutex (writers wait, searches go on): rotate the WAL to segment S+1, and
   write the graph and state into `snapshot-<S+1>.tmp/` (hnswlib `save_index` into the page
   cache — the slow fsync comes later);
2. writers resume, appending to segment S+1 — those records are *not* in the snapshot and
   survive because segment S+1 is only deleted by a later snapshot;
3. fsync the files, write `manifest.json` (`wal_seq: S+1`), fsync, rename the directory to
   `snapshot-<S+1>`, fsync the index directory: the snapshot now exists atomically;
4. delete segments < S+1 and older snapshots.

On open: drop leftover `*.tmp` directories, load the newest complete snapshot (one with a
manifest), delete what it covers, replay the remaining segments in order (a torn last record
is ignored and cut off), and append to the last segment.

Creation writes `index.json` into a temp directory renamed into place; deletion renames the
directory away before removing it, so neither can be seen half done after a crash.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from lakehouse_common.durable import fsync_dir, fsync_file
from lakehouse_common.errors import NotFound
from lakehouse_common.logging import get_logger
from services.vectord.index import IndexParams, Stats, Tuning, VectorIndex
from services.vectord.wal import (
    AddRecord,
    DeleteRecord,
    WalRecord,
    WalWriter,
    list_segments,
    read_segment,
)

PARAMS_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
SNAPSHOT_PREFIX = "snapshot-"
TMP_SUFFIX = ".tmp"

log = get_logger("lakehouse.vectord")


def write_file_durably(path: Path, data: bytes) -> None:
    """Write a new file inside a snapshot directory that is not yet published (the directory's
    rename is the atomic step, so no temporary name here)."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _snapshot_seq(path: Path) -> int | None:
    name = path.name
    if not name.startswith(SNAPSHOT_PREFIX) or name.endswith(TMP_SUFFIX):
        return None
    digits = name[len(SNAPSHOT_PREFIX) :]
    return int(digits) if digits.isdigit() else None


class DurableIndex:
    """A `VectorIndex` whose every acknowledged write is in the WAL."""

    def __init__(self, root: Path, index: VectorIndex, wal: WalWriter, pending: int) -> None:
        self.root = root
        self.index = index
        self.wal = wal
        self.params = index.params
        self._write_mutex = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._closed = False
        self.wal_records = pending  # records not covered by the newest snapshot
        self.last_snapshot: datetime | None = None
        self._last_snapshot_mono = time.monotonic()

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, root: Path, params: IndexParams, tuning: Tuning) -> DurableIndex:
        """Make `root` (must not exist) atomically, then open it."""
        tmp = root.parent / f".{root.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
        tmp.mkdir(parents=True)
        write_file_durably(tmp / PARAMS_FILE, orjson.dumps(params.to_json()))
        fsync_dir(tmp)
        tmp.rename(root)
        fsync_dir(root.parent)
        return cls.open(root, tuning)

    @classmethod
    def open(cls, root: Path, tuning: Tuning) -> DurableIndex:
        params = IndexParams.from_json(orjson.loads((root / PARAMS_FILE).read_bytes()))
        for leftover in root.glob(f"*{TMP_SUFFIX}"):
            shutil.rmtree(leftover, ignore_errors=True)
        snapshots = sorted(
            (seq, p) for p in root.iterdir() if (seq := _snapshot_seq(p)) is not None
        )
        complete = [(seq, p) for seq, p in snapshots if (p / MANIFEST_FILE).exists()]
        index: VectorIndex
        last_snapshot: datetime | None = None
        from_seq = 0
        if complete:
            from_seq, snap = complete[-1]
            manifest = orjson.loads((snap / MANIFEST_FILE).read_bytes())
            index = VectorIndex.load(snap, params, tuning)
            last_snapshot = datetime.fromisoformat(manifest["created_at"])
            for seq, p in snapshots:
                if seq != from_seq:
                    shutil.rmtree(p, ignore_errors=True)
        else:
            index = VectorIndex(params, tuning)
        segments = list_segments(root)
        for seq, path in segments:
            if seq < from_seq:
                path.unlink()  # covered by the snapshot (a crash before step 4)
        segments = [(seq, p) for seq, p in segments if seq >= from_seq]
        replayed = 0
        valid_size: int | None = None
        for n, (_seq, path) in enumerate(segments):
            last = n == len(segments) - 1
            valid = 0
            for end, record in read_segment(path, params.dim, last=last):
                _apply(index, record)
                replayed += 1
                valid = end
            if last:
                valid_size = valid
        if segments:
            wal = WalWriter(root, segments[-1][0], valid_size)
        else:
            wal = WalWriter(root, max(from_seq, 1))
        durable = cls(root, index, wal, replayed)
        durable.last_snapshot = last_snapshot
        if replayed:
            log.info("wal replayed", index=params.name, records=replayed, items=len(index))
        return durable

    def close(self, *, snapshot: bool) -> None:
        """Stop accepting writes (a final snapshot first when asked and needed)."""
        if snapshot and self.wal_records:
            self.snapshot()
        with self._snapshot_lock, self._write_mutex:
            self._closed = True
            self.wal.close()

    def _check_open(self) -> None:
        if self._closed:
            raise NotFound(
                f"index {self.params.name!r} was deleted", details={"index": self.params.name}
            )

    # ----------------------------------------------------------------- writes

    def add(self, record: AddRecord) -> tuple[int, int]:
        """Log, fsync, apply: answer (new, replaced). `record` comes from `prepare_add`."""
        with self._write_mutex:
            self._check_open()
            self.wal.append(record)
            self.wal_records += 1
            return self.index.apply_add(record)

    def delete(self, ids: list[str]) -> tuple[list[str], list[str]]:
        """Delete known ids; answer (deleted, not found). Nothing is logged when none is known."""
        with self._write_mutex:
            self._check_open()
            known, unknown = self.index.present(ids)
            if known:
                self.wal.append(DeleteRecord(known))
                self.wal_records += 1
                self.index.apply_delete(known)
            return known, unknown

    # ----------------------------------------------------------------- snapshots

    def snapshot_due(self, every_ops: int, interval_s: float, now: float) -> bool:
        if not self.wal_records or self._closed:
            return False
        return self.wal_records >= every_ops or now - self._last_snapshot_mono >= interval_s

    def snapshot(self) -> bool:
        """Take a snapshot now (see the module docstring); False when one is running."""
        if not self._snapshot_lock.acquire(blocking=False):
            return False
        try:
            with self._write_mutex:
                if self._closed:
                    return False
                covered = self.wal_records
                seq = self.wal.rotate()
                tmp = self.root / f"{SNAPSHOT_PREFIX}{seq:08d}{TMP_SUFFIX}"
                tmp.mkdir()
                self.index.save(tmp)
                self.wal_records -= covered
            created = datetime.now(UTC)
            for name in os.listdir(tmp):
                fsync_file(tmp / name)
            manifest = {"wal_seq": seq, "created_at": created.isoformat(), "records": covered}
            write_file_durably(tmp / MANIFEST_FILE, orjson.dumps(manifest))
            fsync_dir(tmp)
            final = self.root / f"{SNAPSHOT_PREFIX}{seq:08d}"
            tmp.rename(final)
            fsync_dir(self.root)
            for old_seq, path in list_segments(self.root):
                if old_seq < seq:
                    path.unlink(missing_ok=True)
            for path in self.root.iterdir():
                old = _snapshot_seq(path)
                if old is not None and old < seq:
                    shutil.rmtree(path, ignore_errors=True)
            self.last_snapshot = created
            self._last_snapshot_mono = time.monotonic()
            log.info("snapshot", index=self.params.name, wal_seq=seq, items=len(self.index))
            return True
        finally:
            self._snapshot_lock.release()

    # ----------------------------------------------------------------- reads

    def info(self) -> dict[str, Any]:
        self._check_open()
        stats: Stats = self.index.stats()
        return {
            **self.params.to_json(),
            "count": stats.count,
            "deleted": stats.deleted,
            "capacity": stats.capacity,
            "wal_records": self.wal_records,
            "last_snapshot": self.last_snapshot,
        }


def _apply(index: VectorIndex, record: WalRecord) -> None:
    if isinstance(record, AddRecord):
        index.apply_add(record)
    else:
        index.apply_delete(record.ids)
