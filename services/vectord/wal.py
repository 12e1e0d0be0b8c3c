"""vectord's write-ahead log (SPEC §5): one binary record per acknowledged add/delete batch.

A log is a sequence of segment files `wal-<seq:08d>.log` in the index directory. Each record is

    magic "LHW1" | u32 payload length | u32 crc32(payload) | payload            (little-endian)

and the payload is

    op (b"A" add, b"D" delete) | u32 header length | header JSON | float32 vectors (add only)

where the header is `{"ids": [...], "metadata": [...]}` (delete: `{"ids": [...]}`) and the
vectors are the batch's `n × dim` matrix as raw little-endian float32 — no text encoding of
floats, so a 1000 × 384 batch is one 1.5 MB `write` + `fsync`.

A record is appended and fsync'd before the batch is applied and acknowledged. A crash can leave
a torn record at the end of the active segment: it was never acknowledged, so reading stops
there and `open_segment` truncates it away before appending again. A bad record anywhere else
is corruption and refuses the start (`WalCorrupt`) rather than silently dropping acknowledged
writes that follow it.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from lakehouse_common.durable import fsync_dir, write_all
from lakehouse_common.errors import ServiceUnavailable

MAGIC = b"LHW1"
_HEADER = struct.Struct("<4sII")
_U32 = struct.Struct("<I")
OP_ADD = b"A"
OP_DELETE = b"D"
SEGMENT_PREFIX = "wal-"
SEGMENT_SUFFIX = ".log"


class WalCorrupt(RuntimeError):
    """A record that is not a torn tail failed its checks: the log cannot be trusted."""


@dataclass(frozen=True)
class AddRecord:
    ids: list[str]
    vectors: np.ndarray  # (n, dim) float32
    metadata: list[dict[str, Any]]


@dataclass(frozen=True)
class DeleteRecord:
    ids: list[str]


WalRecord = AddRecord | DeleteRecord


def segment_name(seq: int) -> str:
    return f"{SEGMENT_PREFIX}{seq:08d}{SEGMENT_SUFFIX}"


def segment_seq(path: Path) -> int | None:
    name = path.name
    if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
        return None
    digits = name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
    return int(digits) if digits.isdigit() else None


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segments in `directory`, oldest first."""
    found = [(seq, p) for p in directory.iterdir() if (seq := segment_seq(p)) is not None]
    return sorted(found)


def encode(record: WalRecord) -> bytes:
    """One framed record, ready to append."""
    if isinstance(record, AddRecord):
        header = orjson.dumps({"ids": record.ids, "metadata": record.metadata})
        vectors = np.ascontiguousarray(record.vectors, dtype="<f4").tobytes()
        payload = b"".join((OP_ADD, _U32.pack(len(header)), header, vectors))
    else:
        header = orjson.dumps({"ids": record.ids})
        payload = b"".join((OP_DELETE, _U32.pack(len(header)), header))
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes, dim: int) -> WalRecord:
    op = payload[:1]
    (header_len,) = _U32.unpack_from(payload, 1)
    header = orjson.loads(payload[5 : 5 + header_len])
    ids: list[str] = header["ids"]
    if op == OP_DELETE:
        return DeleteRecord(ids)
    if op != OP_ADD:
        raise WalCorrupt(f"unknown WAL op {op!r}")
    raw = payload[5 + header_len :]
    vectors = np.frombuffer(raw, dtype="<f4").reshape(len(ids), dim)
    return AddRecord(ids, vectors, header["metadata"])


def read_segment(path: Path, dim: int, *, last: bool) -> Iterator[tuple[int, WalRecord]]:
    """Yield `(end offset, record)` for each intact record.

    A torn or failing record at the end of the last segment ends the iteration (it was never
    acknowledged); anywhere else it raises `WalCorrupt`.
    """
    data = path.read_bytes()
    offset = 0
    size = len(data)
    while offset < size:
        problem = None
        if size - offset < _HEADER.size:
            problem = "truncated record header"
        else:
            magic, length, crc = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            if magic != MAGIC:
                problem = "bad record magic"
            elif start + length > size:
                problem = "truncated record payload"
            elif zlib.crc32(data[start : start + length]) != crc:
                problem = "record checksum mismatch"
        if problem is not None:
            if last and _is_tail(data, offset):
                return
            raise WalCorrupt(f"{path}: {problem} at offset {offset} of {size}")
        payload = data[start : start + length]
        offset = start + length
        yield offset, decode_payload(payload, dim)


def _is_tail(data: bytes, offset: int) -> bool:
    """Whether a bad record at `offset` can be the torn last write: no intact record follows."""
    nxt = data.find(MAGIC, offset + 1)
    while nxt != -1:
        if len(data) - nxt >= _HEADER.size:
            _, length, crc = _HEADER.unpack_from(data, nxt)
            start = nxt + _HEADER.size
            if start + length <= len(data) and zlib.crc32(data[start : start + length]) == crc:
                return False
        nxt = data.find(MAGIC, nxt + 1)
    return True


class WalWriter:
    """Appends records to the active segment; `rotate` starts the next one."""

    def __init__(self, directory: Path, seq: int, valid_size: int | None = None) -> None:
        self.directory = directory
        self.seq = seq
        self._broken: str | None = None
        self._file: BinaryIO = self._open(seq, valid_size)

    def _open(self, seq: int, valid_size: int | None) -> BinaryIO:
        path = self.directory / segment_name(seq)
        existed = path.exists()
        handle = path.open("ab")
        if valid_size is not None and handle.tell() > valid_size:
            # Cut a torn tail off before appending after it (see module docstring).
            handle.truncate(valid_size)
            handle.seek(valid_size)
            os.fsync(handle.fileno())
        if not existed:
            fsync_dir(self.directory)
        return handle

    def append(self, record: WalRecord) -> None:
        """Write one record and fsync it: when this returns the batch is durable.

        Written straight to the descriptor, and cut back off when the write or the fsync fails
        (a full disk): a buffered writer would keep the refused record's bytes and flush them
        before the next record — a batch answered as failed would come back on replay, or a
        torn record would sit mid-log and refuse the next start (issue 9's disk-full test).
        """
        if self._broken is not None:
            raise ServiceUnavailable(f"the write-ahead log refuses writes: {self._broken}")
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        try:
            write_all(fd, encode(record))
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError as exc:
                self._broken = f"could not undo a failed write ({exc}); restart vectord"
            raise

    def rotate(self) -> int:
        """Close the active segment and open `seq + 1`; answer the new sequence number."""
        self._file.close()
        self.seq += 1
        self._file = self._open(self.seq, None)
        return self.seq

    def close(self) -> None:
        self._file.close()
